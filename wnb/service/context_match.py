"""Joined-up data quality (issue 18 part 5): too few events whose person has safeguarding context.

A child-protection plan the rules never see is a rule that never fires, so a low match rate (a CP-IS-style share
of judged events whose person has context) is made loud: the `wnb_context_match_ratio` gauge, a warning in
`/health/ready` (still 200: the service works, its inputs are incomplete) and one admin task `context-match-low`
about `context`, not opened again while it is open (wnb/store/admin_tasks.py).
"""

from __future__ import annotations

from datetime import datetime
from threading import Lock
from typing import Any

from sqlalchemy import Engine

from wnb import metrics
from wnb.store.admin_tasks import open_admin_task
from wnb.store.quality import ContextCoverage, context_coverage

CONTEXT_MATCH_CODE = "context-match-low"
CONTEXT_ABOUT = "context"


def is_below(coverage: ContextCoverage, minimum: float) -> bool:
    """Whether the match rate is known and below `minimum` (no events: nothing to judge)."""
    return coverage.ratio is not None and coverage.ratio < minimum


class ContextWatch:
    """The last check's coverage, shared between the scheduler's job and `/health/ready`."""

    def __init__(self, db: Engine, minimum: float, stale_days: int) -> None:
        self.db = db
        self.minimum = minimum
        self.stale_days = stale_days
        self._lock = Lock()
        self._last: ContextCoverage | None = None

    def check(self, now: datetime, actor: str = "scheduler") -> str | None:
        """Measure now, set the gauges; open the admin task when the rate is below the minimum and none is open.

        The new task's id, or None.
        """
        with self.db.connect() as connection:
            coverage = context_coverage(connection, now, self.stale_days)
        metrics.record_coverage(coverage)
        with self._lock:
            self._last = coverage
        if not is_below(coverage, self.minimum):
            return None
        assert coverage.ratio is not None
        note = (
            f"only {coverage.ratio:.0%} of {coverage.events} events have the person's safeguarding context "
            f"(minimum {self.minimum:.0%}); {coverage.people_without_context} people have events but no context: "
            "check the child register feed (see the data-quality page)"
        )
        details = {
            "match_ratio": round(coverage.ratio, 4),
            "events": coverage.events,
            "people_without_context": coverage.people_without_context,
        }
        return open_admin_task(self.db, CONTEXT_ABOUT, CONTEXT_MATCH_CODE, note, details, now, actor)

    def warning(self) -> dict[str, Any] | None:
        """The readiness warning of the last check, or None when the rate was not below the minimum."""
        with self._lock:
            last = self._last
        if last is None or not is_below(last, self.minimum):
            return None
        return {
            "context_match_ratio": round(last.ratio or 0.0, 4),
            "minimum": self.minimum,
            "people_without_context": last.people_without_context,
        }
