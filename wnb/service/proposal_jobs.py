"""Proposals made on the pages (issue 15): checked and their scenarios run at once, so the person sees what is
wrong on the form; then backtested in a background thread whose progress is kept in the registry's job table
(wnb.store.ruleset_jobs), and stored as proposed with that evidence when it is done.

The job's row names the process that runs it (`host:pid`), which beats a heartbeat every half minute while it
runs. A job whose process has gone (wnb restarted, or crashed) would otherwise stay "running" for ever: when
`wnb serve` starts and whenever the pages read the jobs, such a job is marked interrupted with the reason, and
the page offers to run it again.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine

from wnb.core import policy
from wnb.core.errors import NotFound
from wnb.core.policy import Action, Principal
from wnb.service.proposals import backtest_and_store, default_period, prepare
from wnb.store import ruleset_jobs, rulesets

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 30.0  # how often a running job's process says it is alive
GONE_AFTER = timedelta(minutes=5)  # a job with no heartbeat this long is taken as interrupted


def this_process() -> str:
    """The owner name of a job this process runs: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def why_gone(job: dict[str, object], now: datetime) -> str | None:
    """Why job `job` (queued or running) is taken as interrupted, or None while its process may still run it."""
    owner, heartbeat = job.get("owner"), job.get("heartbeat_at")
    if not isinstance(owner, str) or not owner:
        return "interrupted: it was started before wnb recorded which process runs a job; run it again"
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
        return f"interrupted: its process ({owner}) is no longer running (wnb restarted or stopped); run it again"
    if not isinstance(heartbeat, datetime) or now - heartbeat > GONE_AFTER:
        since = heartbeat.isoformat() if isinstance(heartbeat, datetime) else "it started"
        minutes = int(GONE_AFTER.total_seconds() // 60)
        return (
            f"interrupted: no sign of life from its process ({owner}) for over {minutes} minutes (since {since}); "
            "run it again"
        )
    return None


def interrupt_abandoned(db: Engine, now: datetime) -> list[int]:
    """Mark every queued or running job whose process has gone as interrupted, with the reason; their ids."""
    marked = []
    for job in ruleset_jobs.unfinished(db):
        reason = why_gone(job, now)
        if reason is not None and ruleset_jobs.interrupt(db, int(job["id"]), reason, now):
            log.warning("proposal_job_interrupted", job=job["id"])
            marked.append(int(job["id"]))
    return marked


def _beating(db: Engine, job_id: int, clock: Callable[[], datetime]) -> threading.Event:
    """Beat job `job_id`'s heartbeat every HEARTBEAT_SECONDS until the event returned is set."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            ruleset_jobs.update_job(db, job_id, heartbeat_at=clock())

    threading.Thread(target=beat, name=f"wnb-proposal-{job_id}-heartbeat", daemon=True).start()
    return stop


def start_proposal(
    db: Engine,
    files: dict[str, bytes],
    where: str,
    by: Principal,
    note: str | None,
    clock: Callable[[], datetime],
    wait: bool = False,
    run_tests: bool = False,
) -> int:
    """Check `files` and run their scenarios now (a RulesetError or ReleaseRefused otherwise), then start the
    backtest in the background; the job's id. `wait` runs the backtest before returning (the tests, the demo);
    `run_tests` (WNB_PROPOSE_TESTS) runs the system controls' named tests in the background job first."""
    policy.check(by, Action.RULES_PROPOSE)
    now = clock()
    candidate = prepare(files, where, now)
    active = rulesets.active(db, now)
    compared_against = active.version if active else None
    job_id = ruleset_jobs.start(db, rulesets.as_text(files), candidate.version, by.name, note, now, this_process())
    first, last = default_period(now)

    def run() -> None:
        stage = "running the system controls' tests, then " if run_tests else ""
        stage += f"backtesting {first.isoformat()} to {last.isoformat()} against {str(compared_against)[:12]}"
        ruleset_jobs.update_job(db, job_id, state="running", stage=stage, heartbeat_at=clock())
        stop = _beating(db, job_id, clock)
        try:
            proposal = backtest_and_store(db, candidate, by, note, (first, last), compared_against, clock(), run_tests)
        except Exception as error:  # the job's row says why; the page shows it
            log.warning("proposal_job_failed", job=job_id, error_type=type(error).__name__)
            ruleset_jobs.update_job(db, job_id, state="failed", stage="failed", error=str(error), finished_at=clock())
            return
        finally:
            stop.set()
        ruleset_jobs.update_job(
            db, job_id, state="done", stage="done", version=proposal.release.version, finished_at=clock()
        )
        log.info("proposal_job_done", job=job_id, version=proposal.release.short)

    if wait:
        run()
    else:
        threading.Thread(target=run, name=f"wnb-proposal-{job_id}", daemon=True).start()
    return job_id


def run_again(
    db: Engine, job_id: int, by: Principal, clock: Callable[[], datetime], wait: bool = False, run_tests: bool = False
) -> int:
    """Start job `job_id`'s candidate files again as a new job proposed by `by` (an interrupted or failed job)."""
    stored = ruleset_jobs.files_of(db, job_id)
    if stored is None:
        raise NotFound(f"there is no proposal job {job_id}")
    job = ruleset_jobs.job(db, job_id)
    note = job["note"] if job else None
    files = {name: text.encode("utf-8") for name, text in stored.items()}
    return start_proposal(db, files, f"job {job_id} run again", by, note, clock, wait, run_tests)
