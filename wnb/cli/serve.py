"""The service's commands: `wnb serve`, `wnb inbox`, `wnb keys create|bind|revoke|list`,
`wnb users create|disable|password|unlock|list`, `wnb db upgrade`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wnb.cli import JsonOption, _emit_json, app, guarded, out, say, service
from wnb.core.errors import WnbError
from wnb.core.wording import local
from wnb.database import open_database
from wnb.logs import configure as configure_logging
from wnb.settings import Settings, load_settings, refuse_unsafe_production
from wnb.store.accounts import Principal, person_named

if TYPE_CHECKING:
    from sqlalchemy import Engine

keys_app = typer.Typer(help="API keys for client systems.", no_args_is_help=True)
users_app = typer.Typer(
    help="Accounts for people (nurses, clinicians, booking teams, governance).", no_args_is_help=True
)
db_app = typer.Typer(help="The database's schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")


OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="An administrator's user name (an enabled account with the admin role), recorded in the audit log "
        "via the CLI; without it, wnb's operator at this shell (`cli`).",
    ),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="A source the key may write events for (an event's `source`, a FHIR identifier system matched "
        "exactly, an HL7 MSH-4); repeat for several.",
    ),
]
ContextOption = Annotated[
    bool,
    typer.Option("--context", help="The key may also write safeguarding context (the child register)."),
]


def _operator(by: str | None) -> Principal | str:
    """The person named by --by (an enabled account; its role is checked by wnb.core.policy), else wnb's operator."""
    return person_named(open_database(), by) if by is not None else "cli"


def _warn_about_mllp_peers(settings: Settings) -> None:
    from wnb.ingest.mllp_peers import startup_warning

    if warning := startup_warning(settings):
        typer.echo(f"wnb: warning: {warning}", err=True)


@app.command()
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

    settings = guarded(load_settings)
    guarded(lambda: refuse_unsafe_production(settings))  # before the database is opened or created
    if settings.log_level is None:
        configure_logging(logging.INFO)  # a service logs each request (ids only) unless told otherwise
    if mllp_port is not None:
        _warn_about_mllp_peers(settings)
    guarded(
        lambda: run_server(
            service(),
            host or settings.host,
            settings.port if port is None else port,
            sweep_minutes or settings.sweep_minutes,
            inbox or settings.inbox,
            settings=settings,
            mllp_port=mllp_port,
        )
    )


@app.command("feeds")
def feeds_status(as_json: JsonOption = False) -> None:
    """Show each clinic feed watched by WNB_FEED_WINDOWS: its window, its last event and whether it is silent."""
    from datetime import UTC, datetime

    from wnb.service.feeds import check_feeds, window_text

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
            return _emit_json(items)
        table = Table(title=f"{sum(status.silent for status in statuses)} of {len(items)} feeds silent")
        for column in ("source", "window", "last event (UK time)", "state"):
            table.add_column(column)
        for item in items:
            last = item["last_event_at"]
            state = "SILENT" if item["silent"] else "ok" if last else "never heard from"
            table.add_row(str(item["source"]), str(item["window"]), local(str(last)) if last else "", state)
        out.print(table)

    guarded(run)


@app.command("inbox")
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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at WNB_DATABASE_URL to the newest schema (also done on `wnb serve` start)."""
    from wnb.store.schema import head, upgrade

    def run() -> None:
        engine = open_database(create=False)
        before = upgrade(engine)
        if before == head():
            say(f"database schema already at revision {head()}")
        else:
            say(f"database schema upgraded from revision {before or 'none'} to {head()}")
        _switch_to_audit_keys(engine)

    guarded(run)


def _switch_to_audit_keys(engine: Engine) -> None:
    """With WNB_AUDIT_KEY set on a log written without it: append `audit_rekeyed` now, and checkpoint the switch."""
    from datetime import UTC, datetime

    from wnb.service.audit_checkpoints import CheckpointWriter, load_private_key
    from wnb.store.audit import switch_to_keys
    from wnb.store.db import writing

    with writing(engine) as connection:
        switched = switch_to_keys(connection)
    if not switched:
        return
    say("audit log: records from here on carry an HMAC with WNB_AUDIT_KEY (an audit_rekeyed record marks the switch)")
    settings = load_settings()
    if settings.audit_signing_key is None or settings.audit_checkpoint_dir is None:
        say("take a checkpoint of the switch now: wnb audit checkpoint --to DIR (then ship DIR to write-once storage)")
        return
    private = load_private_key(settings.audit_signing_key.get_secret_value())
    path = CheckpointWriter(engine, private, settings.audit_checkpoint_dir).take(datetime.now(UTC))
    say(f"checkpoint of the switch written: {path}")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="Usually clinic-system.")],
    name: Annotated[str, typer.Option("--name", help="The client system's name, e.g. pas-north.")],
    sources: SourceOption = None,
    context: ContextOption = False,
    by: OperatorOption = None,
) -> None:
    """Create an API key bound to what it may write; it is printed once and only its hash is stored.

    A clinic-system key needs --source (once or more) or --context: it may write nothing else.
    """
    from wnb.store.accounts import create_api_key

    guarded(lambda: say(create_api_key(open_database(), role, name, _operator(by), sources or (), context)))


@keys_app.command("bind")
def keys_bind(
    name: Annotated[str, typer.Argument(help="The client system's name the key was created for.")],
    sources: SourceOption = None,
    context: ContextOption = False,
    by: OperatorOption = None,
) -> None:
    """Bind a key to the sources it may write for (and context with --context), replacing its binding.

    A key made before bindings existed is refused every write until it is bound.
    """
    from wnb.store.accounts import bind_api_key

    def run() -> None:
        bind_api_key(open_database(), name, sources or (), context, actor=_operator(by))
        shown = ", ".join(sorted(set(sources or ()))) or "no source"
        say(f"API key {name} bound to {shown}{' and safeguarding context' if context else ''}")

    guarded(run)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The client system's name the key was created for.")],
    by: OperatorOption = None,
) -> None:
    """Revoke a client system's API key: every later request with it is refused (401)."""
    from wnb.store.accounts import revoke_api_key

    def run() -> None:
        revoke_api_key(open_database(), name, actor=_operator(by))
        say(f"API key {name} revoked")

    guarded(run)


@keys_app.command("list")
def keys_list(as_json: JsonOption = False, by: OperatorOption = None) -> None:
    """List API keys (name, role, what it may write, prefix, created, revoked); never the keys themselves."""
    from wnb.store.accounts import list_api_keys

    def run() -> None:
        items = list_api_keys(open_database(), actor=_operator(by))
        if as_json:
            return _emit_json(items)
        table = Table(title=f"{len(items)} API key{'s' if len(items) != 1 else ''}")
        for column in ("name", "role", "may write", "prefix", "created", "revoked"):
            table.add_column(column)
        for item in items:
            created, revoked = item["created_at"] or "", item["revoked_at"]
            table.add_row(
                item["name"],
                item["role"],
                _binding_text(item),
                item["prefix"],
                local(created),
                local(revoked) if revoked else "",
            )
        out.print(table)

    guarded(run)


def _binding_text(item: dict[str, Any]) -> str:
    if item["sources"] is None:
        return f"nothing until bound (wnb keys bind {item['name']} ...)"
    written = [f"source {source}" for source in item["sources"]] + (["context"] if item["context"] else [])
    return ", ".join(written) or "-"


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name, e.g. nurse.jones.")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="booking-team, clinician, safeguarding-nurse, named-nurse, safeguarding-lead, governance or admin.",
        ),
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    by: OperatorOption = None,
) -> None:
    """Create a person's account; the password (12 characters or more) is stored as an argon2 hash."""
    from wnb.store.accounts import create_user

    def run() -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        create_user(open_database(), name, role, password, actor=_operator(by))
        say(f"user {name} created with role {role}")

    guarded(run)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    by: OperatorOption = None,
) -> None:
    """Disable a person's account: their password is refused from now on (401); history stays."""
    from wnb.store.accounts import disable_user

    def run() -> None:
        disable_user(open_database(), name, actor=_operator(by))
        say(f"user {name} disabled")

    guarded(run)


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
    by: OperatorOption = None,
) -> None:
    """Set a person's new password (12 characters or more); every session of theirs on the pages ends at once."""
    from wnb.store.accounts import change_password

    def run() -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        ended = change_password(open_database(), name, password, actor=_operator(by))
        say(f"password of {name} changed; {ended} session{'s' if ended != 1 else ''} signed out")

    guarded(run)


@users_app.command("unlock")
def users_unlock(
    name: Annotated[str, typer.Argument(help="User name.")],
    by: OperatorOption = None,
) -> None:
    """Lift a lock after failed sign-ins now (it also opens by itself after WNB_SIGNIN_LOCK_MINUTES)."""
    from datetime import UTC, datetime

    from wnb.store.signin import unlock

    def run() -> None:
        addresses = unlock(open_database(), name, datetime.now(UTC), actor=_operator(by))
        say(f"user {name} unlocked: failed sign-ins from {addresses} address{'es' if addresses != 1 else ''} cleared")

    guarded(run)


@users_app.command("list")
def users_list(as_json: JsonOption = False, by: OperatorOption = None) -> None:
    """List accounts (name, role, created, disabled); never passwords."""
    from wnb.store.accounts import list_users

    def run() -> None:
        items = list_users(open_database(), actor=_operator(by))
        if as_json:
            return _emit_json(items)
        table = Table(title=f"{len(items)} user{'s' if len(items) != 1 else ''}")
        for column in ("name", "role", "created", "disabled"):
            table.add_column(column)
        for item in items:
            created, disabled = item["created_at"] or "", item["disabled_at"]
            table.add_row(item["name"], item["role"], local(created), local(disabled) if disabled else "")
        out.print(table)

    guarded(run)


@app.command("mllp")
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
