"""The registry's store (wnb/store/rulesets.py) on both stores: each step written with its audit record, the
first registration made once, and a scheduled version coming into force at its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.domain import Role
from wnb.core.errors import Forbidden
from wnb.core.policy import Kind, Principal
from wnb.core.releases import ReleaseRefused, Status
from wnb.core.ruleset import content_version
from wnb.database import open_database
from wnb.rule_files import read_files
from wnb.store import audit_verify, rulesets

STORES = ("sqlite", "postgres")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOV = Principal(Kind.USER, "gov.one", Role.GOVERNANCE, via="cli")
CSO = Principal(Kind.USER, "cso.one", Role.CLINICAL_SAFETY_OFFICER, via="cli")
ADMIN = Principal(Kind.USER, "admin.one", Role.ADMIN, via="cli")


def candidate() -> dict[str, bytes]:
    files = read_files(DEFAULT_RULES)
    return {**files, "ruleset.yaml": files["ruleset.yaml"] + b"# changed\n"}


def test_a_version_goes_from_first_registration_to_proposed_approved_and_active(db_url: str) -> None:
    db = open_database(db_url)
    first = rulesets.register_first(db, read_files(DEFAULT_RULES), "rules/default", NOW)
    assert rulesets.register_first(db, candidate(), "elsewhere", NOW) == first  # once only
    proposed = rulesets.propose(db, candidate(), GOV, "a comment", {"check": {"passed": True}}, first.version, NOW)
    assert rulesets.files_of(db, proposed.version) == candidate()
    assert content_version(rulesets.files_of(db, proposed.version)) == proposed.version
    with pytest.raises(Forbidden):
        rulesets.decide(db, proposed.version[:8], GOV, True, "mine", NOW)
    approved = rulesets.decide(db, proposed.version[:8], CSO, True, "scenarios pass", NOW)
    assert approved.status is Status.APPROVED
    later = NOW + timedelta(hours=1)
    step = rulesets.activate(db, proposed.version[:8], ADMIN, later, NOW, production=True)
    assert step.release.status is Status.SCHEDULED
    active = rulesets.active(db, NOW)
    assert active is not None and active.version == first.version
    active = rulesets.active(db, later)
    assert active is not None and active.version == proposed.version
    statuses = {release.version: release.status for release in rulesets.history(db)}
    assert statuses == {first.version: Status.RETIRED, proposed.version: Status.ACTIVE}
    with db.connect() as connection:
        assert audit_verify.verify(connection).ok
    db.dispose()


def test_a_proposal_is_refused_when_the_active_version_changed_meanwhile(db_url: str) -> None:
    db = open_database(db_url)
    rulesets.register_first(db, read_files(DEFAULT_RULES), "rules/default", NOW)
    with pytest.raises(ReleaseRefused, match="propose again"):
        rulesets.propose(db, candidate(), GOV, None, {}, "f" * 64, NOW)
    assert len(rulesets.history(db)) == 1
    db.dispose()
