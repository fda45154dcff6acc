"""The pages people use (issue 4): server-rendered, mounted at /web in the app that `wnb serve` runs.

A sub-application of its own, so its HTML error pages, session cookie and CSRF checks never touch the API's
problem+json answers, and the API's check that every route is guarded by a role still holds.
"""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Route

from wnb.api.auth import client_address
from wnb.core.errors import Forbidden, InvalidAction, NotFound, WnbError
from wnb.service import Service
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.signin import Limits, TooManyFailures, check_password
from wnb.web.render import PREFIX, home_for, render
from wnb.web.session import (
    SESSION_HOURS,
    CsrfChecked,
    Refused,
    SentHome,
    SignInNeeded,
    current_user,
    sign_in,
    sign_in_location,
    sign_out,
)


def page_routers() -> list[APIRouter]:
    """The router of every page module of this package (a module with a `router`), by module name: a new page
    is its module and its template, with nothing to register here."""
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__))
    return [
        module.router for module in sorted(modules, key=lambda module: module.__name__) if hasattr(module, "router")
    ]


def _is_safe(target: str) -> bool:
    """Only a path inside the pages: never another site (an open redirect)."""
    return target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target


def _audit_session(service: Service, actor: str, action: str) -> None:
    """Who used the pages and when: a sign-in or sign-out is on the record like any other action."""
    with writing(service.db) as connection:
        log = AuditLog(connection)
        log.append(service.clock(), actor, action, [actor], {"via": "web"})
        log.finish()


def create_web(
    service: Service, session_secret: str, https_only: bool = False, limits: Limits | None = None
) -> FastAPI:
    """The pages as an app of their own over `service`; `limits` on failed sign-ins (default: Limits())."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.state.service = service
    web.state.sign_in_limits = limits or Limits()
    web.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie="wnb_session",
        path=PREFIX,  # the cookie goes only to the pages, never to the API
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=https_only,
    )

    # The security headers (never cached, never framed, …) come from the app the pages are mounted in
    # (wnb.api.headers), the same as the API's.

    web.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @web.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form(request: Request, next: str = "") -> Response:
        if (principal := current_user(request)) is not None:
            return RedirectResponse(home_for(principal.role), status_code=303)
        return render(request, "sign_in.html", next=next if _is_safe(next) else "", error=None)

    @web.post("/sign-in", response_class=HTMLResponse, dependencies=[CsrfChecked])
    def sign_in_submit(
        request: Request,
        name: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=1000)] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        principal = None
        if name.strip() and password:
            try:
                principal = check_password(
                    service.db, name.strip(), password, client_address(request), service.clock(),
                    web.state.sign_in_limits, via="web",
                )  # fmt: skip
            except TooManyFailures as refused:
                error = f"Too many failed sign-ins: {refused.advice}."
                page = render(request, "sign_in.html", status_code=429, next=next, error=error, name=name)
                page.headers["Retry-After"] = str(refused.retry_after_seconds)
                return page
        if principal is None:
            error = "Wrong user name or password."
            return render(request, "sign_in.html", status_code=401, next=next, error=error, name=name)
        sign_in(request, principal)
        _audit_session(service, principal.actor, "signed_in")
        return RedirectResponse(next if _is_safe(next) else home_for(principal.role), status_code=303)

    @web.post("/sign-out", dependencies=[CsrfChecked])
    def sign_out_submit(request: Request) -> Response:
        if (principal := current_user(request)) is not None:
            _audit_session(service, principal.actor, "signed_out")
        sign_out(request)
        return RedirectResponse(PREFIX + "/sign-in", status_code=303)

    for router in page_routers():
        web.include_router(router)

    async def on_sign_in_needed(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInNeeded)
        return RedirectResponse(sign_in_location(error.next_path), status_code=303)

    async def on_sent_home(request: Request, error: Exception) -> Response:
        assert isinstance(error, SentHome)
        return RedirectResponse(home_for(error.role), status_code=303)  # e.g. governance has no worklist

    async def on_refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refused)
        return render(request, "error.html", status_code=error.status_code, message=error.reason)

    async def on_wnb_error(request: Request, error: Exception) -> Response:
        status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, InvalidAction) else 400
        if isinstance(error, Forbidden):  # wnb.core.policy refused: say why, and who may
            status = 403
        return render(request, "error.html", status_code=status, message=str(error))

    web.add_exception_handler(SignInNeeded, on_sign_in_needed)
    web.add_exception_handler(Refused, on_refused)
    web.add_exception_handler(SentHome, on_sent_home)
    web.add_exception_handler(WnbError, on_wnb_error)
    return web


def mount_web(
    app: FastAPI, service: Service, session_secret: str | None, https_only: bool = False, limits: Limits | None = None
) -> None:
    """Mount the pages at /web on `app`, and send a browser opening / to them.

    Without a secret, a random one is made for this process: nobody can forge a session with a known default,
    at the cost of signing everyone out on restart and of sessions not crossing replicas.
    """
    if not session_secret:
        session_secret = secrets.token_urlsafe(32)  # production mode refuses to start without one (settings)
    web = create_web(service, session_secret, https_only, limits)
    web.state.settings = getattr(app.state, "settings", None)  # the data-quality page's thresholds
    app.mount(PREFIX, web)

    async def to_pages(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    app.router.routes.append(Route("/", to_pages, methods=["GET"], include_in_schema=False))
