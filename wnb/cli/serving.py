"""The running services: `wnb serve`, `wnb feeds`, `wnb inbox` and `wnb mllp`."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wnb.cli.common import JsonOption, emit_json, guarded, open_database, out, say, service
from wnb.core.errors import WnbError

if TYPE_CHECKING:
    from wnb.service import Service
    from wnb.settings import Settings


def _warn_about_mllp_peers(settings: Settings) -> None:
    from wnb.ingest.mllp_peers import startup_warning

    if warning := startup_warning(settings):
        typer.echo(f"wnb: warning: {warning}", err=True)


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default WNB_HOST).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (default WNB_PORT).")] = None,
    sweep_minutes: Annotated[
        float | None,
        typer.Option(
            "--sweep-minutes",
            help="Run WNB-14 and escalations this often, and once at start (default WNB_SWEEP_MINUTES).",
        ),
    ] = None,
    inbox: Annotated[
        Path | None, typer.Option("--inbox", help="A folder to poll every minute for feed files (default WNB_INBOX).")
    ] = None,
    mllp_port: Annotated[
        int | None, typer.Option("--mllp-port", help="Also listen for HL7 v2 over MLLP on this port.")
    ] = None,
) -> None:
    """Run the HTTP API (ingestion, worklist, actions; OpenAPI at /docs) and the scheduler until interrupted."""
    from wnb.api import serve as run_server
    from wnb.logs import configure as configure_logging
    from wnb.settings import load_settings, refuse_unsafe_production

    settings = guarded(load_settings)
    guarded(lambda: refuse_unsafe_production(settings))  # before the database is opened or created
    if settings.log_level is None:
        configure_logging(logging.INFO)  # a service logs each request (ids only) unless told otherwise
    if mllp_port is not None:
        _warn_about_mllp_peers(settings)
    served = guarded(lambda: service(follow_registry=True))  # a newly activated version judges without a restart
    guarded(lambda: _interrupt_abandoned_jobs(served))
    guarded(
        lambda: run_server(
            served,
            host or settings.host,
            settings.port if port is None else port,
            sweep_minutes or settings.sweep_minutes,
            inbox or settings.inbox,
            settings=settings,
            mllp_port=mllp_port,
        )
    )


def _interrupt_abandoned_jobs(served: Service) -> None:
    """Mark the pages' proposal jobs whose process has gone (this server before its restart) as interrupted."""
    from wnb.service.proposal_jobs import interrupt_abandoned

    interrupt_abandoned(served.db, served.clock())


def feeds_status(as_json: JsonOption = False) -> None:
    """Show each clinic feed watched by WNB_FEED_WINDOWS: its window, its last event and whether it is silent."""
    from rich.table import Table

    from wnb.core.wording import local
    from wnb.service.feeds import check_feeds, window_text
    from wnb.settings import load_settings

    def run() -> None:
        settings = load_settings()
        if not settings.feed_windows:
            raise WnbError("no feed is watched: set WNB_FEED_WINDOWS, e.g. pas=24h,community-ehr=3d")
        now = datetime.now(UTC)
        statuses = check_feeds(open_database(settings.database_url), settings.feed_windows, now, since=now)
        items = [
            {
                "source": status.source,
                "window": window_text(status.window),
                "last_event_at": status.last_event_at.isoformat() if status.last_event_at else None,
                "silent": status.silent,
            }
            for status in statuses
        ]
        if as_json:
            return emit_json(items)
        table = Table(title=f"{sum(status.silent for status in statuses)} of {len(items)} feeds silent")
        for column in ("source", "window", "last event (UK time)", "state"):
            table.add_column(column)
        for item in items:
            last = item["last_event_at"]
            state = "SILENT" if item["silent"] else "ok" if last else "never heard from"
            table.add_row(str(item["source"]), str(item["window"]), local(str(last)) if last else "", state)
        out.print(table)

    guarded(run)


def inbox_poll(
    folder: Annotated[Path, typer.Argument(help="The inbox folder.")],
    settle_seconds: Annotated[
        float, typer.Option("--settle-seconds", help="Take a file only once unchanged this long.")
    ] = 5.0,
) -> None:
    """Ingest the settled files of an inbox folder once (for cron); move each to processed/ or quarantine/."""
    from wnb.ingest.inbox import poll

    def run() -> None:
        if not folder.is_dir():
            raise WnbError(f"{folder}: no such folder")
        for polled in poll(service(), folder, settle_seconds):
            if polled.reason:
                say(f"{polled.name}: {polled.outcome}: {polled.reason}")
            else:
                shown = ", ".join(f"{number} {name}" for name, number in sorted(polled.counts.items()))
                say(f"{polled.name}: {polled.outcome} ({shown or 'no rows'})")

    guarded(run)


def mllp_listen(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port, printed at start).")] = 2575,
) -> None:
    """Listen for HL7 v2 SIU messages over MLLP; store and evaluate each, then ACK (AA, or AE/AR with ERR).

    Each source (MSH-4) is taken only from its addresses in WNB_MLLP_PEERS (in development, from loopback
    when it has none).
    """
    import asyncio
    import signal

    from wnb.ingest.mllp import Listener
    from wnb.ingest.mllp_peers import Peers
    from wnb.logs import configure as configure_logging
    from wnb.settings import load_settings

    settings = guarded(load_settings)

    async def listen() -> None:
        listener = Listener(
            service(),
            host,
            port,
            peers=Peers.from_settings(settings),
            idle_seconds=settings.mllp_idle_minutes * 60,
            max_connections=settings.mllp_max_connections,
        )
        bound = await listener.start()
        say(f"listening for HL7 v2 over MLLP on {host}:{bound}")
        sys.stdout.flush()
        stop = asyncio.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):  # stop between messages, not in the middle of one
            asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
        await stop.wait()
        await listener.close()

    if settings.log_level is None:
        configure_logging(logging.INFO)
    _warn_about_mllp_peers(settings)

    def run() -> None:
        asyncio.run(listen())

    guarded(run)
