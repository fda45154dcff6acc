"""The life of a ruleset version (wnb.core.releases), with no database: who may take each step, and when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from wnb.core import releases
from wnb.core.domain import Role
from wnb.core.releases import Release, ReleaseRefused, Status

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
V0, V1, V2 = "0" * 64, "1" * 64, "2" * 64
CSO = Role.CLINICAL_SAFETY_OFFICER


def first() -> Release:
    return releases.first_registration(V0, "wnb", "from rules/default", NOW)


def proposed(version: str = V1, against: str | None = V0, by: str = "gov") -> Release:
    return releases.propose(None, version, by, "note", against, NOW)


def approved(version: str = V1, against: str | None = V0) -> Release:
    return releases.approve(proposed(version, against), "cso", CSO, "scenarios pass", NOW)


def test_the_first_registration_is_active_and_not_yet_approved() -> None:
    release = first()
    assert release.status is Status.ACTIVE and not release.is_approved and release.active_from == NOW


def test_a_proposal_records_the_active_version_its_evidence_compared_against() -> None:
    assert proposed().compared_against == V0 and proposed().status is Status.PROPOSED


def test_a_safety_officer_who_did_not_propose_approves_with_a_reason() -> None:
    release = approved()
    assert (release.status, release.approved_by, release.reason) == (Status.APPROVED, "cso", "scenarios pass")


def test_the_proposer_may_not_approve_their_own_version() -> None:
    with pytest.raises(ReleaseRefused, match="proposed version .* may not approve"):
        releases.approve(proposed(by="cso"), "cso", CSO, "mine", NOW)


def test_only_a_clinical_safety_officer_approves_or_rejects() -> None:
    for step in (releases.approve, releases.reject):
        with pytest.raises(ReleaseRefused, match="only a clinical-safety-officer"):
            step(proposed(), "lead", Role.SAFEGUARDING_LEAD, "ok", NOW)


def test_a_decision_needs_a_reason_and_a_proposed_version() -> None:
    with pytest.raises(ReleaseRefused, match="reason"):
        releases.reject(proposed(), "cso", CSO, "  ", NOW)
    with pytest.raises(ReleaseRefused, match="only a proposed version"):
        releases.reject(approved(), "cso2", CSO, "no", NOW)


def test_a_rejected_version_proposed_again_unchanged_is_refused_while_its_evidence_holds() -> None:
    rejected = releases.reject(proposed(), "cso", CSO, "too many tasks", NOW)
    with pytest.raises(ReleaseRefused, match="rejected by cso: too many tasks"):
        releases.propose(rejected, V1, "gov", None, V0, NOW)


def test_proposing_again_after_the_active_version_moved_voids_the_approval() -> None:
    again = releases.propose(approved(), V1, "gov", None, V2, NOW)
    assert (again.status, again.approved_by, again.compared_against) == (Status.PROPOSED, None, V2)


def test_activating_an_approved_version_retires_the_active_one() -> None:
    step = releases.activate([first(), approved()], approved(), "adm", Role.ADMIN, NOW, NOW, production=True)
    assert step.release.status is Status.ACTIVE and step.retired is not None
    assert (step.retired.version, step.retired.status, step.is_rollback) == (V0, Status.RETIRED, False)


def test_production_refuses_an_unapproved_version_and_development_allows_it() -> None:
    with pytest.raises(ReleaseRefused, match="not approved"):
        releases.activate([first(), proposed()], proposed(), "adm", Role.ADMIN, NOW, NOW, production=True)
    step = releases.activate([first(), proposed()], proposed(), "adm", Role.ADMIN, NOW, NOW, production=False)
    assert step.release.status is Status.ACTIVE


def test_only_an_admin_activates() -> None:
    with pytest.raises(ReleaseRefused, match="only an admin"):
        releases.activate([first(), approved()], approved(), "cso", CSO, NOW, NOW, production=False)


def test_a_version_whose_evidence_compared_against_another_active_version_must_be_proposed_again() -> None:
    moved = replace(first(), version=V2)
    with pytest.raises(ReleaseRefused, match="propose it again"):
        releases.activate([moved, approved()], approved(), "adm", Role.ADMIN, NOW, NOW, production=False)


def test_a_retired_version_activated_again_is_a_rollback_marked_for_review() -> None:
    active = replace(approved(), status=Status.ACTIVE)
    retired = replace(first(), status=Status.RETIRED, approved_by="cso")
    step = releases.activate([retired, active], retired, "adm", Role.ADMIN, NOW, NOW, production=True)
    assert step.is_rollback and step.release.status is Status.ACTIVE and step.release.rollback
    assert step.retired is not None and step.retired.version == V1


def test_a_future_time_schedules_the_version_and_its_time_makes_it_active() -> None:
    later = NOW + timedelta(hours=2)
    step = releases.activate([first(), approved()], approved(), "adm", Role.ADMIN, later, NOW, production=True)
    assert step.release.status is Status.SCHEDULED and step.retired is None
    registry = [first(), step.release]
    assert releases.due(registry, NOW + timedelta(hours=1)) is None
    came = releases.due(registry, later)
    assert came is not None and came.release.status is Status.ACTIVE and came.retired is not None


def test_activating_now_unschedules_a_scheduled_version() -> None:
    scheduled = replace(approved(V2), status=Status.SCHEDULED, active_from=NOW + timedelta(days=1))
    step = releases.activate([first(), scheduled, approved()], approved(), "adm", Role.ADMIN, NOW, NOW, False)
    assert step.unscheduled is not None and step.unscheduled.status is Status.APPROVED


def test_a_version_is_found_by_a_unique_prefix_of_six_or_more_characters() -> None:
    registry = [first(), proposed("abcdef12" + "0" * 56), proposed("abcdef34" + "0" * 56)]
    assert releases.find(registry, "abcdef1").version.startswith("abcdef12")
    with pytest.raises(ReleaseRefused, match="ambiguous"):
        releases.find(registry, "abcdef")
    with pytest.raises(ReleaseRefused, match="at least 6"):
        releases.find(registry, "abc")
    with pytest.raises(ReleaseRefused, match="no ruleset version"):
        releases.find(registry, "ffffff")
