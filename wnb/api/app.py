"""The HTTP service: the FastAPI app over one Service, and `serve` to run it with uvicorn.

Everything under /v1 needs an API key or a person's password and checks the caller's role; /health/live
and /health/ready are the anonymous routes. /docs and /openapi.json are public: they describe the API and
hold no records.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from wnb.api import fhir, ingestion, observe, worklist
from wnb.api.problems import install_handlers
from wnb.notify import SmtpSettings
from wnb.scheduler import Scheduler
from wnb.service import Service

ANONYMOUS_PATHS = frozenset({"/health/live", "/health/ready"})


def create_app(
    service: Service,
    sweep_minutes: float | None = None,
    inbox: Path | None = None,
    smtp: SmtpSettings | None = None,
    session_secret: str | None = None,
) -> FastAPI:
    """The API over `service`, with the sweep scheduled every `sweep_minutes` while it runs (None: no scheduler).

    Refuses to build if any route but the anonymous ones lacks a role check.
    """
    scheduler = Scheduler(service, sweep_minutes, inbox, smtp=smtp) if sweep_minutes else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if scheduler:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler:
                scheduler.stop()

    app = FastAPI(
        title="wnb",
        summary="Was-Not-Brought alerts for children's health services",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.heartbeat = scheduler.heartbeat if scheduler else None
    install_handlers(app)

    @app.get("/health/live", summary="The process is up (no authentication)")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    observe.install(app)
    app.include_router(ingestion.router)
    app.include_router(worklist.router)
    app.include_router(fhir.router)
    _check_every_route_guarded(app)
    # The pages (issue 4) at /web; the secret signs their session cookie (settings will supply it).
    from wnb.web import mount_web  # here: wnb.web imports the API's role checks

    mount_web(app, service, session_secret or os.environ.get("WNB_SESSION_SECRET"))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in ingestion.SCHEMAS.items():
                components.setdefault(name, definition)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
    return app


def _is_guarded(route: APIRoute) -> bool:
    return any(hasattr(dependency.call, "guards_roles") for dependency in route.dependant.dependencies)


def _check_every_route_guarded(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in ANONYMOUS_PATHS and not _is_guarded(route):
            raise RuntimeError(f"route {route.path} has no role check")


def serve(
    service: Service,
    host: str = "127.0.0.1",
    port: int = 8000,
    sweep_minutes: float = 5,
    inbox: Path | None = None,
    smtp: SmtpSettings | None = None,
) -> None:
    """Run the API with uvicorn until interrupted.

    uvicorn's access log is off: request paths and queries carry NHS numbers, and logs hold ids only.
    """
    uvicorn.run(
        create_app(service, sweep_minutes, inbox, smtp), host=host, port=port, access_log=False, log_level="info"
    )
