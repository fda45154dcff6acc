"""What the listeners (MLLP, the inbox) hand their items to: anything that ingests, the service included.

The listeners sit below the service (wnb.ingest never imports wnb.service); `wnb.service.Service` satisfies
this interface structurally, and the entry points hand it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from wnb.core.errors import InvalidEvent
from wnb.core.items import RawItem
from wnb.core.policy import Principal


class Ingests(Protocol):
    """Stores and evaluates items: a file's in chunks, or one message in its own transaction."""

    @property
    def db(self) -> Engine: ...

    def clock(self) -> datetime: ...

    def ingest(self, items: Iterable[RawItem], origin: str, actor: str = ...) -> Mapping[str, int]:
        """Every item of a file, stored or kept as a reject: the counts by outcome."""
        ...

    def ingest_one_or_reject(
        self, item: RawItem, origin: str, actor: str = ..., by: Principal | None = None
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction: its status, and the reason when it was rejected or stale."""
        ...
