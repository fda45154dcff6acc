"""Proposals made on the pages (issue 15): checked and their scenarios run at once, so the person sees what is
wrong on the form; then backtested in a background thread whose progress is kept in the registry's job table
(wnb.store.ruleset_jobs), and stored as proposed with that evidence when it is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy import Engine

from wnb.core import policy
from wnb.core.policy import Action, Principal
from wnb.service.proposals import backtest_and_store, default_period, prepare
from wnb.store import ruleset_jobs, rulesets

log = structlog.get_logger(__name__)


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
    job_id = ruleset_jobs.start(db, rulesets.as_text(files), candidate.version, by.name, note, now)
    first, last = default_period(now)

    def run() -> None:
        stage = "running the system controls' tests, then " if run_tests else ""
        stage += f"backtesting {first.isoformat()} to {last.isoformat()} against {str(compared_against)[:12]}"
        ruleset_jobs.update_job(db, job_id, state="running", stage=stage)
        try:
            proposal = backtest_and_store(db, candidate, by, note, (first, last), compared_against, clock(), run_tests)
        except Exception as error:  # the job's row says why; the page shows it
            log.warning("proposal_job_failed", job=job_id, error_type=type(error).__name__)
            ruleset_jobs.update_job(db, job_id, state="failed", stage="failed", error=str(error), finished_at=clock())
            return
        ruleset_jobs.update_job(
            db, job_id, state="done", stage="done", version=proposal.release.version, finished_at=clock()
        )
        log.info("proposal_job_done", job=job_id, version=proposal.release.short)

    if wait:
        run()
    else:
        threading.Thread(target=run, name=f"wnb-proposal-{job_id}", daemon=True).start()
    return job_id
