"""Request ids and request logs (structlog, ids only), Prometheus metrics and the readiness check.

A log line names the route's template (`/v1/people/{nhs_number}/timeline`), never the path itself: paths and
query strings carry NHS numbers.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wnb import metrics, notify
from wnb.api.auth import MetricsReader
from wnb.ingest import inbox
from wnb.store.db import ping

log = structlog.get_logger("wnb.api")


class RequestLog:
    """Pure ASGI middleware: a request id on every answer and in every log line, one log line per request.

    (Starlette's BaseHTTPMiddleware costs a task and a stream per request; this costs a closure.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
        rid = given if given and len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        status = 500  # unless the app answers: an exception escaping the app is a server error
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            log.info(
                "request_handled",
                request_id=rid,
                method=scope["method"],
                route=getattr(scope.get("route"), "path", "(no route)"),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )


def install(app: FastAPI) -> None:
    app.add_middleware(RequestLog)

    @app.get("/metrics", summary="Prometheus metrics (admin role)", response_class=PlainTextResponse)
    def prometheus(request: Request, _: MetricsReader) -> PlainTextResponse:
        notify.record_backlog(request.app.state.service.db)  # also when no delivery job runs (no channel set)
        inbox.record_quarantined(request.app.state.service.db)
        stale_days = request.app.state.settings.context_stale_days
        body = metrics.scrape(request.app.state.service.db, datetime.now(UTC), stale_days)
        return PlainTextResponse(body.decode(), media_type="text/plain; version=0.0.4")

    @app.get(
        "/health/ready",
        summary=(
            "The database answers, the sweep is not stalled and no clinic feed is silent (no authentication); "
            "quarantined inbox files whose admin task is open, and a context match rate below "
            "WNB_CONTEXT_MATCH_MIN, are listed under `warnings`"
        ),
    )
    def ready(request: Request) -> Response:
        try:
            ping(request.app.state.service.db)
        except Exception as error:  # any database failure means not ready; the reason is the class name only
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, status_code=503)
        heartbeat = request.app.state.heartbeat
        if heartbeat is not None and heartbeat.is_stale(datetime.now(UTC)):
            last = heartbeat.last_sweep.isoformat() if heartbeat.last_sweep else None
            body = {"status": "unavailable", "reason": "sweep stalled", "last_sweep": last}
            return JSONResponse(body, status_code=503)
        feeds = request.app.state.feeds
        silent = feeds.silent_sources() if feeds is not None else []
        if silent:
            body = {"status": "unavailable", "reason": f"silent feed: {', '.join(silent)}", "silent_feeds": silent}
            return JSONResponse(body, status_code=503)
        # Ready all the same: one bad nightly file must not take every replica out of the load balancer.
        quarantined = inbox.record_quarantined(request.app.state.service.db)
        warnings: list[dict[str, object]] = [
            {"quarantined_file": item["file"], "admin_task": item["task"]} for item in quarantined
        ]
        # Ready too: the service works; what it is told about children is incomplete (wnb/service/context_match.py).
        context = getattr(request.app.state, "context_watch", None)
        if context is not None and (low := context.warning()) is not None:
            warnings.append(low)
        if warnings:
            return JSONResponse({"status": "ok", "warnings": warnings})
        return JSONResponse({"status": "ok"})
