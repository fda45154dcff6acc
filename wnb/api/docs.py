"""/docs and /redoc: FastAPI's documentation pages under a Content-Security-Policy that names what they load
(Swagger UI and ReDoc from the jsDelivr CDN, Swagger's one inline script by its hash), never framed."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
CDN = "https://cdn.jsdelivr.net"


def docs_policy(html: str) -> str:
    """The policy for one documentation page: its inline scripts allowed by hash, nothing else inline."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {CDN} {hashes}".rstrip()
        + f"; style-src 'self' {CDN} https://fonts.googleapis.com 'unsafe-inline'; font-src https://fonts.gstatic.com"
        "; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; worker-src blob:"
        "; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )


def _page(html: HTMLResponse) -> HTMLResponse:
    body = bytes(html.body).decode()
    return HTMLResponse(body, headers={"Content-Security-Policy": docs_policy(body)})


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs and /redoc over the schema at `openapi_url` (not in the schema, no role: they hold no records)."""

    async def swagger(request: Request) -> HTMLResponse:
        url = request.scope.get("root_path", "") + openapi_url
        return _page(get_swagger_ui_html(openapi_url=url, title=f"{app.title} - Swagger UI"))

    async def redoc(request: Request) -> HTMLResponse:
        url = request.scope.get("root_path", "") + openapi_url
        return _page(get_redoc_html(openapi_url=url, title=f"{app.title} - ReDoc"))

    app.router.routes.append(Route("/docs", swagger, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/redoc", redoc, methods=["GET"], include_in_schema=False))
