"""The queues a data-quality lead or an administrator clears: `wnb rejects` and `wnb outbox`."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer
from rich.text import Text

from wnb.cli.common import AllOption, JsonOption, emit_json, guarded, open_database, out, say


def rejects(as_json: JsonOption = False, all_: AllOption = False) -> None:
    """The data-quality queue: rejected rows and stale outcomes (kind), with the reason and the raw row."""
    from rich.table import Table

    from wnb.core.wording import local
    from wnb.store import listing

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.rejects(connection, include_handled=all_)
        if as_json:
            return emit_json(items)
        stale = sum(1 for item in items if item["kind"] == "stale-outcome")
        refused = len(items) - stale
        title = f"{refused} rejected row{'s' if refused != 1 else ''}"
        if stale:
            title += f", {stale} stale outcome{'s' if stale != 1 else ''}"
        table = Table(title=title, title_justify="left")
        for column in ("id", "kind", "received (UK time)", "times", "from", "line", "field", "reason", "raw"):
            table.add_column(column, overflow="fold")
        for item in items:
            cells = [
                item["id"],
                item["kind"],
                local(item["received_at"]),
                _times(item),
                item["origin"],
                str(item["line"] or ""),
                item["field"] or "",
                item["reason"],
                ("base64 of the bytes received: " if item["raw_encoding"] == "base64" else "") + item["raw"][:200],
            ]
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)

    guarded(run)


def outbox(
    as_json: JsonOption = False,
    all_: Annotated[bool, typer.Option("--all", help="Delivered messages too, not only those not delivered.")] = False,
) -> None:
    """Notifications not delivered (pending, sending, uncertain, failed), each with what to do about it."""
    from rich.table import Table

    from wnb import notify
    from wnb.notify import webhook
    from wnb.store import listing

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.outbox(connection, include_sent=all_)
        for item in items:  # a webhook URL (or a FHIR endpoint) may carry a token: show its host only
            address = item["recipient"].removeprefix("fhir:")
            if webhook.is_webhook(address):
                item["recipient"] = (
                    webhook.host_of(item["recipient"])
                    if address == item["recipient"]
                    else ("fhir:" + webhook.host_of(address))
                )
        if as_json:
            return emit_json(items)
        table = Table(title=f"{len(items)} notification{'s' if len(items) != 1 else ''}", title_justify="left")
        for column in ("id", "status", "to", "notification", "tries", "last error", "admin task", "what to do"):
            table.add_column(column, overflow="fold")
        for item in items:
            cells = [str(item["id"]), item["status"], item["recipient"], item["notification"], str(item["attempts"])]
            cells += [item["last_error"] or "", item["admin_task"] or "", notify.WHAT_TO_DO.get(item["status"], "")]
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)
        waiting = Counter(item["status"] for item in items)
        if waiting["uncertain"] or waiting["failed"]:
            say(
                f"{waiting['uncertain']} uncertain, {waiting['failed']} failed: each has an admin task "
                "(`wnb tasks --role admin`); `wnb explain T…` shows what to check, then complete the task"
            )

    guarded(run)


def _times(reject: dict[str, Any]) -> str:
    """How often a rejected row was received: `1`, or `3, last Mon 02 Mar 2026 09:05 GMT`."""
    from wnb.core.wording import local

    count = reject["received_count"]
    return str(count) if count == 1 else f"{count}, last {local(reject['last_received_at'])}"
