"""The security headers of every answer, the API's and /docs' as the pages': never cached, never framed, no
script from elsewhere, no path (NHS numbers) in referrers; and HSTS in production, where wnb is on HTTPS.

A plain ASGI middleware round the whole app (the pages are mounted inside it), so it costs the API's hot
paths one loop over a few headers. A header an answer sets itself is kept (e.g. /docs' own policy).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGES_POLICY = "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
HSTS = "max-age=31536000"  # a year; not includeSubDomains: a trust's other hosts are not wnb's to commit


def security_headers(hsts: bool) -> dict[str, str]:
    """The headers every answer carries (unless it set one of them itself)."""
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": PAGES_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """Adds `security_headers` to every HTTP answer of the app it wraps."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = security_headers(hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
