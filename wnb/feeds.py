"""Silent clinic feeds: a source that has sent no event for longer than its window (WNB_FEED_WINDOWS).

A silent feed means missed appointments nobody hears about, so it is made loud three ways: `/health/ready`
fails naming the source, the `wnb_feed_silent` gauge is 1, and one task for the `admin` role is opened per
silent source (not repeated while it is open). An admin task has no child: its NHS number is empty and its
service is `feed:<source>`, so the open-task unique index keeps it single even across replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

import structlog
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from wnb import metrics
from wnb.audit import AuditLog
from wnb.domain import Role, TaskStatus
from wnb.effects import task_ref
from wnb.store import repo
from wnb.store.db import writing

log = structlog.get_logger("wnb.feeds")
SILENT_FEED_CODE = "silent-feed"
NO_CHILD = ""


@dataclass(frozen=True)
class FeedStatus:
    """One watched source as of `checked_at`: when its last event arrived and whether it is silent."""

    source: str
    window: timedelta
    last_event_at: datetime | None
    silent: bool


def window_text(window: timedelta) -> str:
    """A window as it is written in WNB_FEED_WINDOWS: 3d, 24h, 15m or 90s."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def feed_service(source: str) -> str:
    return f"feed:{source}"


def check_feeds(db: Engine, windows: Mapping[str, timedelta], now: datetime, since: datetime) -> list[FeedStatus]:
    """Each watched source's status; one never heard from counts from `since` (when watching began)."""
    statuses = []
    with db.connect() as connection:
        for source, window in sorted(windows.items()):
            last = connection.execute(
                select(func.max(repo.events.c.received_at)).where(repo.events.c.source == source)
            ).scalar()
            silent = now - (last or since) > window
            statuses.append(FeedStatus(source, window, last, silent))
    return statuses


def open_silent_feed_tasks(
    db: Engine, statuses: list[FeedStatus], now: datetime, actor: str = "scheduler"
) -> list[str]:
    """Open an admin task for each silent source that has none open; return the new tasks' ids."""
    opened: list[str] = []
    for status in statuses:
        if not status.silent:
            continue
        try:
            with writing(db) as connection:
                open_task = connection.execute(
                    select(repo.tasks.c.id).where(
                        repo.tasks.c.nhs_number == NO_CHILD,
                        repo.tasks.c.service == feed_service(status.source),
                        repo.tasks.c.code == SILENT_FEED_CODE,
                        repo.tasks.c.status.in_(repo.OPEN_STATUSES),
                    )
                ).first()
                if open_task is not None:
                    continue
                opened.append(_open_task(connection, status, now, actor))
        except IntegrityError:  # another replica opened it in the meantime: one task is what we want
            log.info("silent_feed_task_exists", source=status.source)
    return opened


def _open_task(connection: Connection, status: FeedStatus, now: datetime, actor: str) -> str:
    task = {
        "nhs_number": NO_CHILD,
        "service": feed_service(status.source),
        "code": SILENT_FEED_CODE,
        "owner_role": Role.ADMIN.value,
        "first_owner_role": Role.ADMIN.value,
        "status": TaskStatus.REQUESTED.value,
        "due_at": now,
        "escalation_level": 0,
        "rule_ids": [],
        "created_at": now,
        "ruleset_version": "",
        "updated_at": now,
    }
    task_id = repo.insert_row(connection, repo.tasks, task)
    note = f"no event from {status.source} for longer than {window_text(status.window)}"
    repo.insert_row(
        connection,
        repo.task_history,
        {
            "task_id": task_id,
            "at": now,
            "actor": actor,
            "action": "created",
            "status": task["status"],
            "owner_role": task["owner_role"],
            "due_at": now,
            "escalation_level": 0,
            "note": note,
        },
    )
    audit = AuditLog(connection)
    audit.append(
        now,
        actor,
        "task_created",
        [task_ref(task_id)],
        {
            "code": SILENT_FEED_CODE,
            "service": task["service"],
            "owner_role": Role.ADMIN,
            "due_at": now,
            "source": status.source,
            "window_seconds": status.window.total_seconds(),
            "last_event_at": status.last_event_at,
            "reason": note,
        },
    )
    audit.finish()
    log.warning("silent_feed_task_opened", source=status.source, task=task_ref(task_id))
    return task_ref(task_id)


class FeedWatch:
    """The last check's result, shared between the scheduler's job and `/health/ready`."""

    def __init__(self, db: Engine, windows: Mapping[str, timedelta], started_at: datetime) -> None:
        self.db = db
        self.windows = dict(windows)
        self.started_at = started_at
        self._lock = Lock()
        self._statuses: list[FeedStatus] = []

    def check(self, now: datetime) -> list[FeedStatus]:
        """Check every watched source, set the gauges, open admin tasks for the silent ones."""
        statuses = check_feeds(self.db, self.windows, now, self.started_at)
        for status in statuses:
            metrics.FEED_SILENT.labels(source=status.source).set(1 if status.silent else 0)
            age = now - (status.last_event_at or self.started_at)
            metrics.FEED_AGE.labels(source=status.source).set(age.total_seconds())
        with self._lock:
            self._statuses = statuses
        open_silent_feed_tasks(self.db, statuses, now)
        return statuses

    def silent_sources(self) -> list[str]:
        with self._lock:
            return [status.source for status in self._statuses if status.silent]
