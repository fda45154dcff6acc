"""Two replicas following the registry (issue 15 part 3): a version activated mid-feed judges every event from
the first transaction that starts after its activation, on both, without a restart, and every evaluation
records the version it used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.conftest import DEFAULT_RULES, FixedClock
from tests.factories import event, raw
from wnb.core.domain import Role
from wnb.core.policy import Kind, Principal
from wnb.database import open_database
from wnb.rule_files import read_files
from wnb.service import Service
from wnb.service.active_ruleset import ActiveRulesets
from wnb.store import audit, rulesets

STORES = ("sqlite", "postgres")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CSO = Principal(Kind.USER, "cso.one", Role.CLINICAL_SAFETY_OFFICER, via="cli")
GOV = Principal(Kind.USER, "gov.one", Role.GOVERNANCE, via="cli")
ADMIN = Principal(Kind.USER, "admin.one", Role.ADMIN, via="cli")


def versions_of_evaluations(service: Service) -> dict[str, str]:
    """Each evaluated event's id → the version its evaluation record names."""
    with service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == "evaluation").order_by(audit._audit.c.seq)
        rows = [row._mapping for row in connection.execute(query)]
    return {row["payload"]["event_id"]: row["ruleset_version"] for row in rows}


def test_replicas_judge_by_a_version_activated_mid_feed_from_their_next_transaction(db_url: str) -> None:
    clock = FixedClock(NOW)
    replicas = [open_database(db_url), open_database(db_url)]  # two engines: two replicas' connection pools
    first, second = (
        Service(db, ActiveRulesets(db, DEFAULT_RULES)(NOW), clock=clock, rulesets=ActiveRulesets(db, DEFAULT_RULES))
        for db in replicas
    )
    old = first.ruleset.version
    first.ingest_one(raw(event("e1", appointment_id="a1")), origin="feed")
    second.ingest_one(raw(event("e2", appointment_id="a2")), origin="feed")

    files = read_files(DEFAULT_RULES)
    changed = {**files, "ruleset.yaml": files["ruleset.yaml"] + b"# reviewed wording\n"}
    proposed = rulesets.propose(replicas[0], changed, GOV, None, {"check": {"passed": True}}, old, NOW)
    rulesets.decide(replicas[0], proposed.version, CSO, True, "scenarios pass", NOW)
    clock.now = NOW + timedelta(minutes=5)
    rulesets.activate(replicas[0], proposed.version, ADMIN, clock.now, clock.now, production=True)

    second.ingest_one(raw(event("e3", appointment_id="a3")), origin="feed")  # no restart of either replica
    first.ingest([raw(event(f"e{n}", appointment_id=f"a{n}"), n) for n in (4, 5, 6)], origin="file", chunk=2)
    first.sweep()

    assert versions_of_evaluations(first) == {
        "e1": old,
        "e2": old,
        "e3": proposed.version,
        "e4": proposed.version,
        "e5": proposed.version,
        "e6": proposed.version,
    }
    assert first.ruleset.version == second.ruleset.version == proposed.version
    for db in replicas:
        db.dispose()
