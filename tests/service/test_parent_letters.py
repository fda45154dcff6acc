"""Open letter-to-parent tasks of young people of 16-17, raised before WNB-09 wrote to them (DOMAIN.md §4)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import run_in
from tests.conftest import DEFAULT_RULES, FixedClock
from wnb.core.domain import Role
from wnb.core.items import RawItem
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.rule_files import load_ruleset
from wnb.service import Service
from wnb.service.parent_letters import young_person_parent_letters
from wnb.store import listing

STORES = ("sqlite", "postgres")
YOUNG, CHILD = "9990000018", "9990000026"

# WNB-09 as it was: a letter to the parent of every child, 16 and 17 included.
OLD_WNB_09 = """id: WNB-09
title: Every missed appointment of a child is re-offered and the family and GP are written to
trigger: missed-appointment
when:
  - {fact: is_child, is: true}
tasks:
  - {code: reoffer-appointment, owner: booking-team, due: 2-working-days}
  - {code: letter-to-parent, owner: booking-team, due: 2-working-days}
  - {code: inform-gp, owner: booking-team, due: 2-working-days}
"""


@pytest.fixture
def old_rules(tmp_path: Path) -> Ruleset:
    folder = tmp_path / "old-rules"
    shutil.copytree(DEFAULT_RULES, folder, ignore=shutil.ignore_patterns("scenarios"))
    (folder / "WNB-09-young-person.yaml").unlink()
    (folder / "WNB-09.yaml").write_text(OLD_WNB_09, encoding="utf-8")
    return load_ruleset(folder)


def miss(event_id: str, nhs_number: str, born: str, appointment_id: str) -> dict[str, Any]:
    return {
        "source": "pas",
        "event_id": event_id,
        "nhs_number": nhs_number,
        "date_of_birth": born,
        "service": "community-paediatrics",
        "appointment_id": appointment_id,
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }


def send(service: Service, data: dict[str, Any]) -> None:
    service.ingest_one(RawItem(1, json.dumps(data), data), origin="test")


@pytest.fixture
def before_the_change(db_url: str, old_rules: Ruleset, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    """A 16-year-old (born 2 March 2010, the 16th birthday on the day) and a 9-year-old missed appointments
    under the old WNB-09; then the new ruleset takes over."""
    db = open_database(db_url)
    old = Service(db, old_rules, clock)
    send(old, miss("e1", YOUNG, "2010-03-02", "a1"))
    send(old, miss("e2", CHILD, "2016-07-01", "b1"))
    yield Service(db, ruleset, clock)
    db.dispose()


def test_the_letters_to_parents_of_young_people_are_listed_with_their_age(before_the_change: Service) -> None:
    with before_the_change.db.connect() as connection:
        listed = young_person_parent_letters(connection)
    assert [(item["nhs_number"], item["code"], item["owner_role"], item["age_years"]) for item in listed] == [
        (YOUNG, "letter-to-parent", "booking-team", 16)
    ]


def test_a_letter_cancelled_by_the_booking_team_is_no_longer_listed(before_the_change: Service) -> None:
    with before_the_change.db.connect() as connection:
        (letter,) = young_person_parent_letters(connection)
    booking_team = Principal(Kind.USER, "booking.al", Role.BOOKING_TEAM)
    before_the_change.act_on_task(letter["id"], "cancel", booking_team, "wrote to the young person instead")
    with before_the_change.db.connect() as connection:
        assert young_person_parent_letters(connection) == []
        assert {task["code"] for task in listing.tasks(connection, nhs_number=CHILD)} >= {"letter-to-parent"}


def test_under_the_new_wnb_09_a_young_persons_miss_raises_no_letter_to_parent(before_the_change: Service) -> None:
    send(before_the_change, miss("e3", YOUNG, "2010-03-02", "a2"))
    with before_the_change.db.connect() as connection:
        codes = [task["code"] for task in listing.tasks(connection, nhs_number=YOUNG)]
        assert len(young_person_parent_letters(connection)) == 1  # the old letter stays listed until cancelled
    assert codes.count("letter-to-parent") == 1 and "letter-to-young-person" in codes


def test_wnb_task_young_person_letters_lists_them_for_the_booking_team(
    tmp_path: Path, old_rules: Ruleset, clock: FixedClock
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    old = Service(db, old_rules, clock)
    send(old, miss("e1", YOUNG, "2009-09-01", "a1"))
    send(old, miss("e2", CHILD, "2016-07-01", "b1"))
    db.dispose()

    listed = run_in(tmp_path, "task", "young-person-letters", "--json").json()
    table = run_in(tmp_path, "task", "young-person-letters", columns=200)

    assert [(item["nhs_number"], item["age_years"]) for item in listed] == [(YOUNG, 16)]
    assert "1 open letter-to-parent task of young people (16-17)" in table.out
    assert "write to them instead" in table.out
