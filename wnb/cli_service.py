"""The service's commands: `wnb serve`, `wnb inbox`, `wnb keys create`, `wnb users create`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from wnb.cli import app, guarded, say, service
from wnb.errors import WnbError
from wnb.logs import configure as configure_logging
from wnb.store.db import open_database

keys_app = typer.Typer(help="API keys for client systems.", no_args_is_help=True)
users_app = typer.Typer(
    help="Accounts for people (nurses, clinicians, booking teams, governance).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")


def smtp_settings() -> Any:
    """SMTP from WNB_SMTP_HOST, WNB_SMTP_PORT and WNB_SMTP_FROM; None when no host is set (no e-mail)."""
    from wnb.notify import SmtpSettings

    host = os.environ.get("WNB_SMTP_HOST")
    if not host:
        return None
    port = os.environ.get("WNB_SMTP_PORT", "25")
    if not port.isdigit():
        raise WnbError(f"WNB_SMTP_PORT {port!r} is not a port number")
    return SmtpSettings(host, int(port), os.environ.get("WNB_SMTP_FROM", "wnb@localhost"))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    sweep_minutes: Annotated[
        float, typer.Option("--sweep-minutes", help="Run WNB-14 and escalations this often (and once at start).")
    ] = 5,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="A folder to poll every minute for feed files.")] = None,
    mllp_port: Annotated[
        int | None, typer.Option("--mllp-port", help="Also listen for HL7 v2 over MLLP on this port.")
    ] = None,
) -> None:
    """Run the HTTP API (ingestion, worklist, actions; OpenAPI at /docs) and the scheduler until interrupted."""
    from wnb.api import serve as run_server

    if "WNB_LOG_LEVEL" not in os.environ:
        configure_logging(logging.INFO)  # a service logs each request (ids only) unless told otherwise
    guarded(lambda: run_server(service(), host, port, sweep_minutes, inbox, smtp_settings(), mllp_port=mllp_port))


@app.command("inbox")
def inbox_poll(
    folder: Annotated[Path, typer.Argument(help="The inbox folder.")],
    settle_seconds: Annotated[
        float, typer.Option("--settle-seconds", help="Take a file only once unchanged this long.")
    ] = 5.0,
) -> None:
    """Ingest the settled files of an inbox folder once (for cron); move each to processed/ or quarantine/."""
    from wnb.inbox import poll

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


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="Usually clinic-system.")],
    name: Annotated[str, typer.Option("--name", help="The client system's name, e.g. pas-north.")],
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from wnb.accounts import create_api_key

    guarded(lambda: say(create_api_key(open_database(), role, name)))


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
) -> None:
    """Create a person's account; the password (12 characters or more) is stored as an argon2 hash."""
    from wnb.accounts import create_user

    def run() -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        create_user(open_database(), name, role, password)
        say(f"user {name} created with role {role}")

    guarded(run)


@app.command("mllp")
def mllp_listen(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port, printed at start).")] = 2575,
) -> None:
    """Listen for HL7 v2 SIU messages over MLLP; store and evaluate each, then ACK (AA, or AE/AR with ERR)."""
    import asyncio
    import signal

    from wnb.mllp import Listener

    async def listen() -> None:
        listener = Listener(service(), host, port)
        bound = await listener.start()
        say(f"listening for HL7 v2 over MLLP on {host}:{bound}")
        sys.stdout.flush()
        stop = asyncio.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):  # stop between messages, not in the middle of one
            asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
        await stop.wait()
        await listener.close()

    if "WNB_LOG_LEVEL" not in os.environ:
        configure_logging(logging.INFO)

    def run() -> None:
        asyncio.run(listen())

    guarded(run)
