"""Prometheus metrics of this process (ARCHITECTURE.md §7, issue 3): counters the edge updates, gauges read
from the database when scraped. Labels carry sources, results, rule ids and roles: never personal data."""

from __future__ import annotations

import math
from collections import Counter as Counts
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine

from wnb.store.quality import ContextCoverage, context_coverage
from wnb.store.sql import Sql

REGISTRY = CollectorRegistry()
EVENTS = Counter(
    "wnb_events_ingested", "Events and rows ingested, by origin and result", ["origin", "result"], registry=REGISTRY
)
EVALUATIONS = Counter("wnb_evaluations", "Evaluations of the rules", registry=REGISTRY)
RAISED = Counter("wnb_items_raised", "Flags and tasks raised, by kind and rule", ["kind", "rule"], registry=REGISTRY)
SWEEP_SECONDS = Histogram("wnb_sweep_seconds", "Duration of the time-based sweep", registry=REGISTRY)
OVERDUE = Gauge("wnb_overdue_tasks", "Requested tasks past their due time, by owner role", ["role"], registry=REGISTRY)
BACKLOG_STATUSES = ("pending", "sending", "uncertain", "failed")
OUTBOX_BACKLOG = Gauge(
    "wnb_outbox_backlog", "Outbox rows not sent, by status (set by the delivery job)", ["status"], registry=REGISTRY
)
SWEEP_AGE = Gauge(
    "wnb_sweep_last_success_age_seconds",
    "Seconds since the sweep last succeeded (since start when it has not yet), set every minute",
    registry=REGISTRY,
)
FEED_SILENT = Gauge(
    "wnb_feed_silent",
    "1 when a source has sent no event for longer than its window, else 0",
    ["source"],
    registry=REGISTRY,
)
FEED_AGE = Gauge(
    "wnb_feed_last_event_age_seconds",
    "Seconds since a watched source's last event was received",
    ["source"],
    registry=REGISTRY,
)

INBOX_QUARANTINED = Gauge(
    "wnb_inbox_quarantined_files",
    "Inbox files quarantined (unreadable or of unknown type) whose admin task is still open",
    registry=REGISTRY,
)
CONTEXT_MATCH = Gauge(
    "wnb_context_match_ratio",
    "Share of judged events whose person has safeguarding context (NaN while there are no events)",
    registry=REGISTRY,
)
PEOPLE_WITHOUT_CONTEXT = Gauge(
    "wnb_people_without_context", "People with judged events but no safeguarding context", registry=REGISTRY
)
CONTEXT_STALE = Gauge(
    "wnb_context_stale",
    "People whose safeguarding context was not refreshed within WNB_CONTEXT_STALE_DAYS",
    registry=REGISTRY,
)


_MUTED: ContextVar[bool] = ContextVar("wnb_metrics_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    """No counting in this context (this thread only): a simulation replays history into a scratch database."""
    token = _MUTED.set(True)
    try:
        yield
    finally:
        _MUTED.reset(token)


def count_evaluation() -> None:
    if not _MUTED.get():
        EVALUATIONS.inc()


def sweep_timer() -> AbstractContextManager[Any]:
    return nullcontext() if _MUTED.get() else SWEEP_SECONDS.time()


def count_ingested(origin: str, counts: Counts[str]) -> None:
    if _MUTED.get():
        return
    kind = origin.split(":", 1)[0] if ":" in origin else "file"  # api:<client>, context:<file>, or a file name
    for result, number in counts.items():
        EVENTS.labels(origin=kind, result=result).inc(number)


def count_raised(kind: str, rule_ids: Iterable[str]) -> None:
    if _MUTED.get():
        return
    for rule_id in rule_ids:
        RAISED.labels(kind=kind, rule=rule_id).inc()


def record_coverage(coverage: ContextCoverage) -> None:
    """Set the gauges of joined-up data quality (wnb/store/quality.py)."""
    CONTEXT_MATCH.set(math.nan if coverage.ratio is None else coverage.ratio)
    PEOPLE_WITHOUT_CONTEXT.set(coverage.people_without_context)
    CONTEXT_STALE.set(coverage.stale_contexts)


def scrape(db: Engine, now: datetime, context_stale_days: int = 90) -> bytes:
    """The text exposition format, with the database gauges read now."""
    with db.connect() as connection:
        record_coverage(context_coverage(connection, now, context_stale_days))
        rows = (
            Sql(connection)
            .execute(
                "SELECT owner_role, count(*) FROM task WHERE status = 'requested' AND due_at <= :now "
                "GROUP BY owner_role",
                {"now": now},
            )
            .fetchall()
        )
    OVERDUE.clear()
    for role, number in rows:
        OVERDUE.labels(role=role).set(number)
    return generate_latest(REGISTRY)
