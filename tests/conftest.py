"""Shared fixtures: the default ruleset, a service on a real SQLite file, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wnb.ruleset import Ruleset, load_ruleset
from wnb.service import Service
from wnb.store.db import open_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "rules" / "default"


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_ruleset(DEFAULT_RULES)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wnb.db'}"


@pytest.fixture
def service(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(db_url)
    yield Service(db, ruleset, clock)
    db.dispose()
