"""Accounts: `wnb keys create|bind|revoke|list` for client systems, `wnb users create|disable|password|unlock|list`
for people."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from wnb.cli.common import JsonOption, OperatorOption, emit_json, guarded, open_database, operator, out, say

keys_app = typer.Typer(help="API keys for client systems.", no_args_is_help=True)


users_app = typer.Typer(
    help="Accounts for people (nurses, clinicians, booking teams, governance).", no_args_is_help=True
)


SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="A source the key may write events for (an event's `source`, a FHIR identifier system matched "
        "exactly, an HL7 MSH-4); repeat for several.",
    ),
]


RecipientOption = Annotated[
    str | None,
    typer.Option(
        "--recipient",
        help="A partner's key: the ODS code of the recipient (e.g. a GP practice) whose messages it acknowledges.",
    ),
]
ContextOption = Annotated[
    bool,
    typer.Option("--context", help="The key may also write safeguarding context (the child register)."),
]


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="Usually clinic-system.")],
    name: Annotated[str, typer.Option("--name", help="The client system's name, e.g. pas-north.")],
    sources: SourceOption = None,
    context: ContextOption = False,
    recipient: RecipientOption = None,
    by: OperatorOption = None,
) -> None:
    """Create an API key bound to what it may write; it is printed once and only its hash is stored.

    A clinic-system key needs --source (once or more), --context, or --recipient (a partner's system that
    acknowledges the messages sent to that recipient): it may do nothing else.
    """
    from wnb.store.accounts import create_api_key

    guarded(lambda: say(create_api_key(open_database(), role, name, operator(by), sources or (), context, recipient)))


@keys_app.command("bind")
def keys_bind(
    name: Annotated[str, typer.Argument(help="The client system's name the key was created for.")],
    sources: SourceOption = None,
    context: ContextOption = False,
    recipient: RecipientOption = None,
    by: OperatorOption = None,
) -> None:
    """Bind a key to the sources it may write for (and context with --context, and a recipient's messages to
    acknowledge with --recipient), replacing its binding.

    A key made before bindings existed is refused every write until it is bound.
    """
    from wnb.store.accounts import bind_api_key

    def run() -> None:
        bind_api_key(open_database(), name, sources or (), context, actor=operator(by), recipient=recipient)
        shown = ", ".join(sorted(set(sources or ()))) or "no source"
        partner = f" and the messages to {recipient.strip().upper()}" if recipient else ""
        say(f"API key {name} bound to {shown}{' and safeguarding context' if context else ''}{partner}")

    guarded(run)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The client system's name the key was created for.")],
    by: OperatorOption = None,
) -> None:
    """Revoke a client system's API key: every later request with it is refused (401)."""
    from wnb.store.accounts import revoke_api_key

    def run() -> None:
        revoke_api_key(open_database(), name, actor=operator(by))
        say(f"API key {name} revoked")

    guarded(run)


@keys_app.command("list")
def keys_list(as_json: JsonOption = False, by: OperatorOption = None) -> None:
    """List API keys (name, role, what it may write, prefix, created, revoked); never the keys themselves."""
    from rich.table import Table

    from wnb.core.wording import local
    from wnb.store.accounts import list_api_keys

    def run() -> None:
        items = list_api_keys(open_database(), actor=operator(by))
        if as_json:
            return emit_json(items)
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
    email: Annotated[
        str | None, typer.Option("--email", help="Their e-mail address: where a task assigned to them is announced.")
    ] = None,
) -> None:
    """Create a person's account; the password (12 characters or more) is stored as an argon2 hash."""
    from wnb.store.accounts import create_user

    def run() -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        create_user(open_database(), name, role, password, actor=operator(by), email=email)
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
        disable_user(open_database(), name, actor=operator(by))
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
        ended = change_password(open_database(), name, password, actor=operator(by))
        say(f"password of {name} changed; {ended} session{'s' if ended != 1 else ''} signed out")

    guarded(run)


@users_app.command("unlock")
def users_unlock(
    name: Annotated[str, typer.Argument(help="User name.")],
    by: OperatorOption = None,
) -> None:
    """Lift a lock after failed sign-ins now (it also opens by itself after WNB_SIGNIN_LOCK_MINUTES)."""

    from wnb.store.signin import unlock

    def run() -> None:
        addresses = unlock(open_database(), name, datetime.now(UTC), actor=operator(by))
        say(f"user {name} unlocked: failed sign-ins from {addresses} address{'es' if addresses != 1 else ''} cleared")

    guarded(run)


@users_app.command("list")
def users_list(as_json: JsonOption = False, by: OperatorOption = None) -> None:
    """List accounts (name, role, created, disabled); never passwords."""
    from rich.table import Table

    from wnb.core.wording import local
    from wnb.store.accounts import list_users

    def run() -> None:
        items = list_users(open_database(), actor=operator(by))
        if as_json:
            return emit_json(items)
        table = Table(title=f"{len(items)} user{'s' if len(items) != 1 else ''}")
        for column in ("name", "role", "created", "disabled"):
            table.add_column(column)
        for item in items:
            created, disabled = item["created_at"] or "", item["disabled_at"]
            table.add_row(item["name"], item["role"], local(created), local(disabled) if disabled else "")
        out.print(table)

    guarded(run)
