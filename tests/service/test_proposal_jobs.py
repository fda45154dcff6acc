"""A proposal's background job whose process has gone (issue 15): marked interrupted with the reason when wnb serve
starts or the pages read the jobs, instead of staying "running" for ever; and run again as a new job."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.domain import Role
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import load_files
from wnb.rule_files import read_files
from wnb.service import Service, proposal_jobs
from wnb.service.proposal_jobs import GONE_AFTER, interrupt_abandoned, run_again, this_process
from wnb.service.proposals import Candidate
from wnb.store import ruleset_jobs, rulesets

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GOV = Principal(Kind.USER, "gov.one", Role.GOVERNANCE)
NO_SUCH_PID = 99_999_999  # above any pid_max: no process has it


def running(service: Service, owner: str | None, heartbeat: datetime, files: dict[str, str] | None = None) -> int:
    job_id = ruleset_jobs.start(service.db, files or {}, "c" * 64, "gov.one", "a note", NOW, owner)
    ruleset_jobs.update_job(service.db, job_id, state="running", stage="backtesting", heartbeat_at=heartbeat)
    return job_id


def state_of(service: Service, job_id: int) -> tuple[str, str | None]:
    job = ruleset_jobs.job(service.db, job_id)
    assert job is not None
    return job["state"], job["error"]


def test_a_job_whose_process_on_this_host_is_gone_is_marked_interrupted(service: Service) -> None:
    gone = running(service, f"{socket.gethostname()}:{NO_SUCH_PID}", NOW)  # a fresh heartbeat, a dead process
    mine = running(service, this_process(), NOW)
    assert interrupt_abandoned(service.db, NOW) == [gone]
    state, reason = state_of(service, gone)
    assert state == "interrupted"
    assert reason == (
        f"interrupted: its process ({socket.gethostname()}:{NO_SUCH_PID}) is no longer running (wnb restarted or "
        "stopped); run it again"
    )
    assert state_of(service, mine) == ("running", None)
    assert interrupt_abandoned(service.db, NOW) == []  # once


def test_a_job_on_another_host_is_interrupted_only_once_its_heartbeat_is_older_than_the_limit(
    service: Service,
) -> None:
    quiet = running(service, "replica-2:4242", NOW - GONE_AFTER - timedelta(seconds=1))
    beating = running(service, "replica-2:4243", NOW - GONE_AFTER + timedelta(seconds=30))
    assert interrupt_abandoned(service.db, NOW) == [quiet]
    state, reason = state_of(service, quiet)
    assert state == "interrupted" and reason is not None
    assert reason.startswith("interrupted: no sign of life from its process (replica-2:4242) for over 5 minutes")
    assert state_of(service, beating) == ("running", None)


def test_a_job_from_before_owners_were_recorded_is_interrupted(service: Service) -> None:
    old = running(service, None, NOW)
    assert interrupt_abandoned(service.db, NOW) == [old]
    assert "before wnb recorded which process runs a job" in str(state_of(service, old)[1])


def test_an_interrupted_job_runs_again_as_a_new_job_with_the_same_files(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def checked(files: dict[str, bytes], where: str, now: datetime) -> Candidate:  # not the sixty scenarios again
        ruleset = load_files(files, where)
        return Candidate(files, where, ruleset, {"passed": True, "rules": [], "warnings": []}, [])

    monkeypatch.setattr(proposal_jobs, "prepare", checked)
    files = read_files(DEFAULT_RULES)
    files["ruleset.yaml"] += b"# run again\n"
    old = running(service, None, NOW, rulesets.as_text(files))
    interrupt_abandoned(service.db, NOW)
    again = run_again(service.db, old, GOV, lambda: NOW, wait=True)
    job = ruleset_jobs.job(service.db, again)
    assert job is not None and again != old
    assert (job["state"], job["note"], job["owner"]) == ("done", "a note", this_process())
    assert job["version"] == rulesets.find(service.db, job["candidate"]).version
