"""Silent clinic feeds: a source that has sent no event for longer than its window (WNB_FEED_WINDOWS).

A silent feed means missed appointments nobody hears about, so it is made loud three ways: `/health/ready`
fails naming the source, the `wnb_feed_silent` gauge is 1, and one task for the `admin` role is opened per
silent source (not repeated while it is open; see wnb/store/admin_tasks.py), about `feed:<source>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock

from sqlalchemy import Engine, func, select

from wnb import metrics
from wnb.store import repo
from wnb.store.admin_tasks import open_admin_task

SILENT_FEED_CODE = "silent-feed"


@dataclass(frozen=True)
class FeedStatus:
    """One watched source at a check: when its last event arrived and whether it is silent."""

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
    opened = []
    for status in statuses:
        if status.silent:
            note = f"no event from {status.source} for longer than {window_text(status.window)}"
            details = {
                "source": status.source,
                "window_seconds": status.window.total_seconds(),
                "last_event_at": status.last_event_at,
            }
            task = open_admin_task(db, feed_service(status.source), SILENT_FEED_CODE, note, details, now, actor)
            if task is not None:
                opened.append(task)
    return opened


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
