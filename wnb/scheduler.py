"""The in-process scheduler (APScheduler 3.x, jobs in memory): the time-based sweep, with a heartbeat.

The sweep runs once at start, which catches up on everything that fell due while the service was down
(deadlines and due times are judged against `now`, so one late run does the work of all missed ones),
then every few minutes. Runs that were missed while one was still going are coalesced into one. The
database, not the scheduler, makes a repeated sweep harmless: a second sweep at the same time changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Lock

import structlog
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]  # no type hints in 3.x

from wnb import inbox, notify
from wnb.service import Service

log = structlog.get_logger("wnb.scheduler")


@dataclass
class Heartbeat:
    """When the sweep last finished, so a stalled scheduler is visible (`/health/ready` fails)."""

    interval: timedelta
    last_sweep: datetime | None = None
    last_error: str | None = None
    _lock: Lock = field(default_factory=Lock)

    def beat(self, at: datetime, error: str | None = None) -> None:
        with self._lock:
            if error is None:
                self.last_sweep = at
            self.last_error = error

    def is_stale(self, now: datetime) -> bool:
        """No successful sweep within three intervals (or none yet, three intervals after start)."""
        with self._lock:
            return self.last_sweep is None or now - self.last_sweep > 3 * self.interval


class Scheduler:
    """The sweep every `sweep_minutes`, on a background thread of this process."""

    def __init__(
        self,
        service: Service,
        sweep_minutes: float,
        inbox: Path | None = None,
        inbox_seconds: float = 60,
        smtp: notify.SmtpSettings | None = None,
        outbox_seconds: float = 30,
    ) -> None:
        self.service = service
        self.heartbeat = Heartbeat(timedelta(minutes=sweep_minutes))
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_job(
            self.sweep,
            "interval",
            minutes=sweep_minutes,
            id="sweep",
            next_run_time=datetime.now(UTC),  # at start: catch up after downtime
        )
        if inbox is not None:
            self._scheduler.add_job(
                self.poll_inbox, "interval", seconds=inbox_seconds, id="inbox", next_run_time=datetime.now(UTC)
            )
        self.inbox = inbox
        self.smtp = smtp
        if smtp is not None:
            self._scheduler.add_job(
                self.deliver, "interval", seconds=outbox_seconds, id="outbox", next_run_time=datetime.now(UTC)
            )

    def deliver(self) -> None:
        assert self.smtp is not None
        try:
            notify.deliver(self.service.db, self.smtp, datetime.now(UTC))
        except Exception as error:  # keep the scheduler alive; rows stay pending for the next run
            log.error("outbox_delivery_failed", error=type(error).__name__)

    def poll_inbox(self) -> None:
        assert self.inbox is not None
        try:
            inbox.poll(self.service, self.inbox)
        except Exception as error:  # keep the scheduler alive; the next poll tries again
            log.error("inbox_poll_failed", error=type(error).__name__)

    def sweep(self) -> None:
        try:
            self.service.sweep(self.service.clock())
        except Exception as error:  # keep the scheduler alive; the heartbeat and the log show the failure
            log.error("sweep_failed", error=type(error).__name__)
            self.heartbeat.beat(datetime.now(UTC), error=type(error).__name__)
            return
        self.heartbeat.beat(datetime.now(UTC))  # wall-clock time: /health/ready compares with the real clock

    def start(self) -> None:
        if self.smtp is not None:
            stuck = notify.mark_uncertain_after_restart(self.service.db)
            if stuck:
                log.warning("outbox_rows_uncertain", count=stuck)
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
