"""The in-process scheduler (APScheduler 3.x, jobs in memory): the sweep with a heartbeat, inbox polling,
outbox delivery (e-mail and webhooks), the watch on silent clinic feeds, the context match rate and signed audit
checkpoints.

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

from wnb import metrics, notify
from wnb.core.errors import WnbError
from wnb.ingest import inbox
from wnb.notify.webhook import WebhookSettings
from wnb.service import Service
from wnb.service.audit_checkpoints import CheckpointWriter
from wnb.service.context_match import ContextWatch
from wnb.service.feeds import FeedWatch
from wnb.store.admin_tasks import open_admin_task

log = structlog.get_logger("wnb.service.scheduler")


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
        webhook: WebhookSettings | None = None,
        feeds: FeedWatch | None = None,
        feed_seconds: float = 60,
        checkpoints: CheckpointWriter | None = None,
        checkpoint_minutes: float = 60,
        context: ContextWatch | None = None,
        context_minutes: float = 15,
        secure_email: notify.SecureEmailSettings | None = None,
        fhir: notify.FhirSettings | None = None,
        outbox_retention: timedelta | None = None,
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
        self.webhook = webhook
        self.secure_email, self.fhir, self.outbox_retention = secure_email, fhir, outbox_retention
        if self.delivers:
            self._scheduler.add_job(
                self.deliver, "interval", seconds=outbox_seconds, id="outbox", next_run_time=datetime.now(UTC)
            )
        self.feeds = feeds
        self.checkpoints = checkpoints
        if checkpoints is not None and checkpoint_minutes > 0:
            self._scheduler.add_job(  # at start too: a checkpoint soon after an upgrade marks the switch to keys
                self.checkpoint,
                "interval",
                minutes=checkpoint_minutes,
                id="audit-checkpoint",
                next_run_time=datetime.now(UTC),
            )
        self.context = context
        if context is not None:
            # First after one interval, not at start: a service just started has had no time to get its register.
            self._scheduler.add_job(self.check_context, "interval", minutes=context_minutes, id="context-match")
        self.started_at = datetime.now(UTC)
        self._scheduler.add_job(  # the watch: silent feeds and a failing sweep, every minute
            self.watch, "interval", seconds=feed_seconds, id="watch", next_run_time=datetime.now(UTC)
        )

    @property
    def delivers(self) -> bool:
        return any(item is not None for item in (self.smtp, self.webhook, self.secure_email, self.fhir))

    def deliver(self) -> None:
        """A delivery round; then the tasks of messages the outbox gave up on go back at once (issue 18), and
        the texts kept past their retention are emptied."""
        now = datetime.now(UTC)
        try:
            notify.deliver(self.service.db, self.smtp, now, self.webhook, self.secure_email, self.fhir)
            self.service.settle_communications(self.service.clock())
            if self.outbox_retention is not None:
                notify.purge(self.service.db, now, self.outbox_retention)
        except Exception as error:  # keep the scheduler alive; rows stay pending for the next run
            log.error("outbox_delivery_failed", error=type(error).__name__)

    def checkpoint(self) -> Path | None:
        """Write a signed checkpoint of the verified audit chain; a chain that fails to verify gets an admin task."""
        assert self.checkpoints is not None
        now = datetime.now(UTC)
        try:
            path = self.checkpoints.take(now)
        except WnbError as error:  # the chain does not verify, or the folder is gone: people must look
            log.error("audit_checkpoint_refused")
            try:
                open_admin_task(self.service.db, "audit", "audit-checkpoint-refused", str(error), {}, now)
            except Exception as failed:  # keep the scheduler alive; the next run tries again
                log.error("admin_task_failed", error=type(failed).__name__)
            return None
        except Exception as error:  # keep the scheduler alive; the next run tries again
            log.error("audit_checkpoint_failed", error=type(error).__name__)
            return None
        assert self.checkpoints.last is not None
        log.info("audit_checkpoint_written", seq=self.checkpoints.last.seq)
        return path

    def watch(self) -> None:
        """Check the clinic feeds, and the sweep's own heartbeat: both made visible as a gauge and an admin task."""
        now = datetime.now(UTC)  # wall-clock time: events carry the real time they arrived
        try:
            if self.feeds is not None and self.feeds.windows:
                self.feeds.check(now)
            self.check_sweep(now)
        except Exception as error:  # keep the scheduler alive; the next check tries again
            log.error("watch_failed", error=type(error).__name__)

    def check_context(self) -> None:
        """Measure the context match rate; below the minimum, one admin task (wnb/service/context_match.py)."""
        assert self.context is not None
        try:
            self.context.check(datetime.now(UTC))
        except Exception as error:  # keep the scheduler alive; the next check tries again
            log.error("context_check_failed", error=type(error).__name__)

    def check_sweep(self, now: datetime) -> str | None:
        """Set the sweep-age gauge; open an admin task when no sweep has succeeded for three intervals."""
        since = self.heartbeat.last_sweep or self.started_at
        metrics.SWEEP_AGE.set((now - since).total_seconds())
        if now - since <= 3 * self.heartbeat.interval:
            return None
        note = f"no sweep has succeeded since {since.isoformat()} (last error: {self.heartbeat.last_error or 'none'})"
        details = {"last_sweep": self.heartbeat.last_sweep, "last_error": self.heartbeat.last_error}
        return open_admin_task(self.service.db, "scheduler", "sweep-stalled", note, details, now)

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
        if self.delivers:
            stuck = notify.mark_uncertain_after_restart(self.service.db)
            if stuck:
                log.warning("outbox_rows_uncertain", count=stuck)
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
