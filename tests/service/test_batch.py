"""An API batch is stored in one transaction; if that transaction fails, its items are tried one by one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from tests.conftest import FixedClock
from wnb.core.errors import EngineError
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service


def missed(event_id: str) -> dict[str, Any]:
    return {
        "source": "pas",
        "event_id": event_id,
        "nhs_number": "9990000018",
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": f"a-{event_id}",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }


def items(*event_ids: str) -> list[RawItem]:
    return [RawItem(index, "", missed(event_id)) for index, event_id in enumerate(event_ids)]


class FailsOnce(Service):
    """A service whose first evaluation of event `e2` fails (as a lost lock or a bug would)."""

    failed = False

    def run_rules(self, facts: dict[str, Any]) -> Any:
        if not self.failed and facts.get("missed_in_service_365d", 0) >= 2:
            self.failed = True
            raise EngineError("injected failure")
        return super().run_rules(facts)


def commits(db: Engine) -> list[int]:
    counted = [0]

    @event.listens_for(db, "commit")
    def _count(_: Any) -> None:
        counted[0] += 1

    return counted


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    yield engine
    engine.dispose()


def test_a_batch_is_stored_in_one_transaction(db: Engine, ruleset: Ruleset, clock: FixedClock) -> None:
    service = Service(db, ruleset, clock)
    counted = commits(db)
    results = service.ingest_many_explained(items("e1", "e2", "e3"), origin="api:pas")
    assert [status for status, _ in results] == ["accepted"] * 3
    assert counted == [1]


def test_a_batch_whose_transaction_fails_is_stored_item_by_item(
    db: Engine, ruleset: Ruleset, clock: FixedClock
) -> None:
    service = FailsOnce(db, ruleset, clock)
    results = service.ingest_many_explained(items("e1", "e2", "e3"), origin="api:pas")
    assert [status for status, _ in results] == ["accepted"] * 3
    assert service.failed  # the shared attempt failed, and left nothing behind: no item is a duplicate
