"""The HTTP service: the FastAPI app over one Service, and `serve` to run it with uvicorn.

Everything under /v1 needs an API key or a person's password and checks the caller against wnb.core.policy;
/health/live and /health/ready are the anonymous routes. The app refuses to build when a route is missing
from wnb.core.policy.ENTRY_POINTS or does not check the action named there. /docs and /openapi.json are public in
development: they describe the API and hold no records; in production they are served only when WNB_DOCS=true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Mount

from wnb.api import (
    chronology,
    communications,
    docs,
    family,
    fhir,
    fhir_read,
    hl7,
    ingestion,
    observe,
    reports,
    worklist,
)
from wnb.api.headers import SecurityHeaders
from wnb.api.problems import install_handlers
from wnb.core.calendar import is_working_day
from wnb.core.policy import ENTRY_POINTS, Action
from wnb.notify import FhirSettings, SecureEmailSettings, SmtpSettings
from wnb.notify.webhook import WebhookSettings
from wnb.service import Service
from wnb.service.audit_checkpoints import CheckpointWriter, load_private_key
from wnb.service.context_match import ContextWatch
from wnb.service.feeds import FeedWatch
from wnb.service.scheduler import Scheduler
from wnb.settings import DEFAULT_SESSION_SECRET, Settings, load_settings, refuse_unsafe_production
from wnb.store.signin import Limits

log = structlog.get_logger("wnb.api")


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
    With `mllp` (host, port) an HL7 MLLP listener runs beside the API, on the same event loop (wnb.ingest.mllp).
    """
    settings = settings or load_settings()
    if smtp is None and settings.smtp_host:
        smtp = SmtpSettings(settings.smtp_host, settings.smtp_port, settings.smtp_from)
    hook = WebhookSettings(settings.webhook_secret.get_secret_value()) if settings.webhook_url else None
    # Sharing (issue 18): secure e-mail through the SMTP server, only to the secure domains; FHIR always signed.
    secure = (
        SecureEmailSettings(smtp, settings.secure_email_domains, settings.sharing_ca_file)
        if smtp is not None and settings.secure_email_domains
        else None
    )
    signed = FhirSettings(settings.webhook_secret.get_secret_value(), settings.sharing_ca_file)
    feeds = FeedWatch(service.db, settings.feed_windows, datetime.now(UTC)) if settings.feed_windows else None
    checkpoints = _checkpoint_writer(service, settings)
    context = ContextWatch(service.db, settings.context_match_min, settings.context_stale_days)
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
            context=context,
            secure_email=secure,
            fhir=signed,
            outbox_retention=timedelta(days=settings.outbox_retention_days),
        )
        if sweep_minutes
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        is_working_day(datetime.now(UTC).date())  # load the bank holidays now, not in the first request
        listener = None
        if mllp is not None:
            from wnb.ingest.mllp import Listener
            from wnb.ingest.mllp_peers import Peers, startup_warning

            if warning := startup_warning(settings):
                log.warning("mllp_peers_missing", advice=warning)
            listener = Listener(
                service,
                *mllp,
                peers=Peers.from_settings(settings),
                idle_seconds=settings.mllp_idle_minutes * 60,
                max_connections=settings.mllp_max_connections,
            )
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
        docs_url=None,  # wnb.api.docs serves them, with a policy naming what they load
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_open else None,
    )
    if settings.docs_open:
        docs.install(app, "/openapi.json")
    app.add_middleware(SecurityHeaders, hsts=settings.is_production)
    app.state.service = service
    app.state.settings = settings
    limits = Limits(lock_failures=settings.signin_lock_failures, lock_minutes=settings.signin_lock_minutes)
    app.state.sign_in_limits = limits
    app.state.heartbeat = scheduler.heartbeat if scheduler else None
    app.state.feeds = feeds if scheduler else None
    app.state.context_watch = context if scheduler else None
    install_handlers(app)

    @app.get("/health/live", summary="The process is up (no authentication)")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    observe.install(app)
    app.include_router(ingestion.router)
    app.include_router(communications.router)  # before worklist's `/tasks/{task_id}/{action}`
    app.include_router(worklist.router)
    app.include_router(chronology.router)
    app.include_router(family.router)
    app.include_router(fhir.router)
    app.include_router(fhir_read.router)
    app.include_router(hl7.router)
    app.include_router(reports.router)
    # The pages (issue 4) at /web. The development default secret is never used to sign (anyone could forge a
    # session with it): without a secret of its own the pages sign with a random one per process.
    from wnb.web import mount_web  # here: wnb.web imports the API's role checks

    secret = settings.session_secret.get_secret_value()
    session_secret = None if secret == DEFAULT_SESSION_SECRET else secret
    mount_web(app, service, session_secret, https_only=settings.is_production, limits=limits)
    _check_every_route_guarded(app)

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


def entry_points(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route as `METHOD /path` (the key of wnb.core.policy.ENTRY_POINTS) with the route itself.

    Walks included routers (recent FastAPI keeps their routes out of `app.routes`) and the pages' sub-app.
    """
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            if isinstance(route.app, FastAPI) or (route.routes and not isinstance(route.app, StaticFiles)):
                yield from entry_points(route.routes, prefix + route.path)
            else:
                yield f"GET {prefix}{route.path}", route  # static files
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                yield f"{method} {prefix}{context.path}", route


def _guards(route: BaseRoute) -> set[Action]:
    dependencies = route.dependant.dependencies if isinstance(route, APIRoute) else []
    actions = (getattr(dependency.call, "guards_action", None) for dependency in dependencies)
    return {action for action in actions if isinstance(action, Action)}


def _checkpoint_writer(service: Service, settings: Settings) -> CheckpointWriter | None:
    """What writes the scheduled audit checkpoints: set when WNB_AUDIT_SIGNING_KEY and WNB_AUDIT_CHECKPOINT_DIR are."""
    if settings.audit_signing_key is None or settings.audit_checkpoint_dir is None:
        return None
    private = load_private_key(settings.audit_signing_key.get_secret_value())
    return CheckpointWriter(service.db, private, settings.audit_checkpoint_dir)


def _check_every_route_guarded(app: FastAPI) -> None:
    """Refuse to build unless every route is in wnb.core.policy.ENTRY_POINTS and checks the action it names there."""
    for key, route in entry_points(app.routes):
        if key not in ENTRY_POINTS:
            raise RuntimeError(
                f"route {key} is not in wnb.core.policy.ENTRY_POINTS: add it with the action it performs"
            )
        actions = ENTRY_POINTS[key]
        if actions is not None and not _guards(route) & set(actions):
            raise RuntimeError(f"route {key} has no policy check for {actions[0].value} (wnb.api.auth.require)")


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
    # The client's address (sign-in failures count by it) is taken from X-Forwarded-For only when one of
    # WNB_FORWARDED_ALLOW_IPS sent it: from anyone else it could be made up to lock somebody else out.
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
