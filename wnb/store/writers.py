"""The one interface through which the lifecycle's changes reach the flag, task, history and link tables, and
its two implementations: a chunk of ingestion's (`ChunkWriter`: rows kept and written at the chunk's end,
wnb/store/items.py) and a single change's (`DirectWriter`: each row written at once, as the sweep and people's
actions need). wnb/service/effects.py writes through whichever it is given and never asks which it has.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, Table

from wnb.store import repo
from wnb.store.audit import AuditLog, AuditRef
from wnb.store.items import ChunkItems
from wnb.store.sql import Record


class Writer(Protocol):
    def insert(self, table: Table, values: dict[str, Any]) -> int:
        """Insert a flag, task, task history or link row; its id."""
        ...

    def update(self, table: Table, pk: int, values: dict[str, Any]) -> None:
        """Change columns of a flag or task that stays active or open."""
        ...

    def insert_link(self, link: dict[str, Any]) -> None:
        """Link a flag or task to an appointment; its `audit_seq` is the evaluation's record, numbered when the
        transaction's records are chained."""
        ...

    def is_linked(self, kind: str, item_id: int, source: str, appointment_id: str) -> bool: ...

    def active_flags(self, nhs_number: str) -> dict[str, Record]:
        """The person's active flags, by code."""
        ...

    def open_tasks(self, nhs_number: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Record]:
        """The person's open task of each (service, code) in `keys` that has one (others may be given too)."""
        ...

    def before_table_reads(self) -> None:
        """The caller is about to read and change the tables themselves (a withdrawal): write what is kept."""
        ...

    def unlinked(self, kind: str, item_id: int, source: str, appointment_id: str) -> None:
        """The caller made this link inactive in the database."""
        ...

    def closed(self, kind: str, item_id: int) -> None:
        """The caller moved this flag or task out of active or open in the database."""
        ...


class ChunkWriter:
    """A chunk of ingestion: rows are kept with what the chunk read and written at its end."""

    def __init__(self, items: ChunkItems) -> None:
        self.items = items

    def insert(self, table: Table, values: dict[str, Any]) -> int:
        return self.items.insert(table, values)

    def update(self, table: Table, pk: int, values: dict[str, Any]) -> None:
        self.items.update(table, pk, values)

    def insert_link(self, link: dict[str, Any]) -> None:
        self.items.insert(repo.links, link)  # written with the number (wnb/store/pending.py)

    def is_linked(self, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
        return self.items.is_linked(kind, item_id, source, appointment_id)

    def active_flags(self, nhs_number: str) -> dict[str, Record]:
        return self.items.active_flags(nhs_number)

    def open_tasks(self, nhs_number: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Record]:
        return self.items.open_tasks(nhs_number, keys)

    def before_table_reads(self) -> None:
        self.items.write_pending()

    def unlinked(self, kind: str, item_id: int, source: str, appointment_id: str) -> None:
        self.items.unlinked(kind, item_id, source, appointment_id)

    def closed(self, kind: str, item_id: int) -> None:
        self.items.closed(kind, item_id)


class DirectWriter:
    """One change (a sweep's, a person's): every row written at once, every read from the tables."""

    def __init__(self, connection: Connection, audit: AuditLog) -> None:
        self.connection = connection
        self.audit = audit

    def insert(self, table: Table, values: dict[str, Any]) -> int:
        return repo.insert_row(self.connection, table, values)

    def update(self, table: Table, pk: int, values: dict[str, Any]) -> None:
        repo.update_row(self.connection, table, pk, **values)

    def insert_link(self, link: dict[str, Any]) -> None:
        # Written now, for what the change reads next, and given the evaluation's number after the chain.
        evaluation: AuditRef = link["audit_seq"]
        link_id = repo.insert_row(self.connection, repo.links, {**link, "audit_seq": 0})
        self.audit.after_chain(lambda: repo.update_row(self.connection, repo.links, link_id, audit_seq=evaluation.seq))

    def is_linked(self, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
        return repo.is_linked(self.connection, kind, item_id, source, appointment_id)

    def active_flags(self, nhs_number: str) -> dict[str, Record]:
        return repo.active_flags(self.connection, nhs_number)

    def open_tasks(self, nhs_number: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Record]:
        return {
            key: row
            for service in {service for service, _code in keys}
            for key, row in repo.open_tasks(self.connection, nhs_number, service).items()
        }

    def before_table_reads(self) -> None:
        pass  # nothing is kept

    def unlinked(self, kind: str, item_id: int, source: str, appointment_id: str) -> None:
        pass  # nothing is kept

    def closed(self, kind: str, item_id: int) -> None:
        pass  # nothing is kept
