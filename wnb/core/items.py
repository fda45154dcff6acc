"""Items as read from a feed and as checked: the one shape every reader yields and every listener hands on.

Pure: checking an item needs no database, so it can run ahead of ingestion in another process
(wnb/ingest/ahead.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wnb.core import limits
from wnb.core.domain import AttendanceEvent, PersonContext
from wnb.core.errors import InvalidEvent


@dataclass(frozen=True)
class RawItem:
    """One row or message as read: where it was, its text, and its fields or why they could not be read."""

    line: int | None
    text: str
    data: dict[str, Any] | InvalidEvent


@dataclass(frozen=True, slots=True)
class CheckedItem:
    """An item validated before ingestion (perhaps in another process, see wnb/ingest/ahead.py): its event and
    the fields' JSON text as the store writes them, or why it is invalid and the item itself for the reject."""

    line: int | None
    event: AttendanceEvent | InvalidEvent
    raw: str | None = None  # json.dumps of the fields, for a valid event
    item: RawItem | None = None  # an invalid one's row as read, for the data-quality queue

    def __reduce__(self) -> tuple[type[CheckedItem], tuple[Any, ...]]:
        # Unpickled by the constructor: a frozen dataclass's own unpickling looks up its fields every time.
        return CheckedItem, (self.line, self.event, self.raw, self.item)


def check(item: RawItem) -> CheckedItem:
    """Validate one item: pure work, no database, so it can run ahead of (or beside) ingestion.

    Whatever goes wrong with one item is that item's reject (wnb.core.limits), never the end of its file or batch.
    """
    if isinstance(item.data, InvalidEvent):
        return CheckedItem(item.line, item.data, item=item)
    try:
        if problem := limits.value_problem(item.data):
            raise problem
        event = AttendanceEvent.parse(item.data)
    except InvalidEvent as problem:
        return CheckedItem(item.line, problem, item=item)
    except Exception as error:  # a row no check foresaw: rejected on its own, the rest goes on
        return CheckedItem(item.line, InvalidEvent("event", limits.unexpected(error)), item=item)
    # The text the store's JSON column would write for the dict (json.dumps), made here rather than in the
    # writing transaction.
    return CheckedItem(item.line, event, raw=json.dumps(item.data))


def check_context(item: RawItem) -> PersonContext | InvalidEvent:
    """A context record validated, or why it cannot be taken (whatever went wrong with it)."""
    if isinstance(item.data, InvalidEvent):
        return item.data
    try:
        if problem := limits.value_problem(item.data):
            return problem
        return PersonContext.parse(item.data)
    except InvalidEvent as problem:
        return problem
    except Exception as error:  # a record no check foresaw: rejected on its own, the rest goes on
        return InvalidEvent("record", limits.unexpected(error, "the record"))


def raw_item(item: RawItem | CheckedItem) -> RawItem:
    """An item as read, for trying it again on its own."""
    if isinstance(item, RawItem):
        return item
    if item.item is not None:
        return item.item
    assert isinstance(item.event, AttendanceEvent) and item.raw is not None
    return RawItem(item.line, item.raw, json.loads(item.raw))
