"""The HTTP service: the FastAPI app over one Service, and `serve` to run it with uvicorn.

Everything under /v1 needs an API key or a person's password and checks the caller's role; /health/live
and /health/ready are the anonymous routes. /docs and /openapi.json are public in development: they describe
the API and hold no records; in production they are served only when WNB_DOCS=true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from wnb.api import fhir, fhir_read, ingestion, observe, worklist
from wnb.api.problems import install_handlers
from wnb.audit_checkpoints import CheckpointWriter, load_private_key
from wnb.calendar import is_working_day
from wnb.feeds import FeedWatch
from wnb.notify import SmtpSettings
from wnb.scheduler import Scheduler
from wnb.service import Service
from wnb.settings import DEFAULT_SESSION_SECRET, Settings, load_settings, refuse_unsafe_production
from wnb.webhook import WebhookSettings

ANONYMOUS_PATHS = frozenset({"/health/live", "/health/ready"})


def create_app(
    service: Service,
    sweep_minutes: float | None = None,
    inbox: Path | None = None,
    smtp: SmtpSettings | None = None,
    settings: Settings | None = None,
    mllp: tuple[str, int] | None = None,
) -> FastAPI:
    """The API over `service`, with the sweep scheduled every `sweep_minutes` while it runs (None: no scheduler).

    `settings` (default: from the environment) give SMTP when `smtp` is not given, the webhook, the feed
    windows and whether /docs is open. Refuses to build if any route but the anonymous ones lacks a role check.
    With `mllp` (host, port) an HL7 MLLP listener runs beside the API, on the same event loop (wnb.mllp).
    """
    settings = settings or load_settings()
    if smtp is None and settings.smtp_host:
        smtp = SmtpSettings(settings.smtp_host, settings.smtp_port, settings.smtp_from)
    hook = WebhookSettings(settings.webhook_secret.get_secret_value()) if settings.webhook_url else None
    feeds = FeedWatch(service.db, settings.feed_windows, datetime.now(UTC)) if settings.feed_windows else None
    checkpoints = _checkpoint_writer(service, settings)
    scheduler = (
        Scheduler(
            service,
            sweep_minutes,
            inbox,
            smtp=smtp,
            webhook=hook,
            feeds=feeds,
            checkpoints=checkpoints,
            checkpoint_minutes=settings.audit_checkpoint_minutes,
        )
        if sweep_minutes
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        is_working_day(datetime.now(UTC).date())  # load the bank holidays now, not in the first request
        listener = None
        if mllp is not None:
            from wnb.mllp import Listener

            listener = Listener(service, *mllp)
            await listener.start()
        app.state.mllp = listener
        if scheduler:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler:
                scheduler.stop()
            if listener is not None:
                await listener.close()

    app = FastAPI(
        title="wnb",
        summary="Was-Not-Brought alerts for children's health services",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_open else None,
        redoc_url="/redoc" if settings.docs_open else None,
        openapi_url="/openapi.json" if settings.docs_open else None,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.heartbeat = scheduler.heartbeat if scheduler else None
    app.state.feeds = feeds if scheduler else None
    install_handlers(app)

    @app.get("/health/live", summary="The process is up (no authentication)")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    observe.install(app)
    app.include_router(ingestion.router)
    app.include_router(worklist.router)
    app.include_router(fhir.router)
    app.include_router(fhir_read.router)
    _check_every_route_guarded(app)
    # The pages (issue 4) at /web. The development default secret is never used to sign (anyone could forge a
    # session with it): without a secret of its own the pages sign with a random one per process.
    from wnb.web import mount_web  # here: wnb.web imports the API's role checks

    secret = settings.session_secret.get_secret_value()
    mount_web(app, service, None if secret == DEFAULT_SESSION_SECRET else secret, https_only=settings.is_production)

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


def _checkpoint_writer(service: Service, settings: Settings) -> CheckpointWriter | None:
    """What writes the scheduled audit checkpoints: set when WNB_AUDIT_SIGNING_KEY and WNB_AUDIT_CHECKPOINT_DIR are."""
    if settings.audit_signing_key is None or settings.audit_checkpoint_dir is None:
        return None
    private = load_private_key(settings.audit_signing_key.get_secret_value())
    return CheckpointWriter(service.db, private, settings.audit_checkpoint_dir)


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
    settings: Settings | None = None,
    mllp_port: int | None = None,
) -> None:
    """Run the API with uvicorn until interrupted (and the MLLP listener on `mllp_port`, when given).

    In production mode, refuse while a secret is the default. uvicorn's access log is off: request paths
    and queries carry NHS numbers, and logs hold ids only.
    """
    settings = settings or load_settings()
    refuse_unsafe_production(settings)
    mllp = (host, mllp_port) if mllp_port is not None else None
    app = create_app(service, sweep_minutes, inbox, smtp, settings, mllp=mllp)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
