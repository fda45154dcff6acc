"""The background jobs of proposals made on the pages (issue 15): the only code that touches `ruleset_job`.

A job is written when the candidate has checked and its scenarios passed; its backtest then runs in the background
(wnb.service.proposal_jobs) and the row says how far it got, and the version it stored or why it failed, so any
replica's page can show its progress. Its owner (`host:pid`) beats a heartbeat while it runs, so a job whose
process has gone is marked interrupted (wnb.service.proposal_jobs) instead of staying "running" for ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from wnb.store.db import writing
from wnb.store.tables import RulesetJobRow

_jobs = RulesetJobRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_SHOWN: tuple[str, ...] = ("id", "state", "stage", "proposed_by", "note", "candidate", "started_at", "finished_at")
_SHOWN += ("version", "error", "owner", "heartbeat_at")
UNFINISHED = ("queued", "running")


def start(
    db: Engine,
    files: Mapping[str, str],
    candidate: str,
    by: str,
    note: str | None,
    now: datetime,
    owner: str | None = None,
) -> int:
    """A new job, queued, for the candidate `files` (UTF-8 text by name), run by the process `owner`; its id."""
    with writing(db) as connection:
        values: dict[str, Any] = {"state": "queued", "stage": "queued", "proposed_by": by, "note": note}
        values |= {"candidate": candidate, "owner": owner, "heartbeat_at": now}
        result = connection.execute(insert(_jobs).values(**values, files=dict(files), started_at=now))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def update_job(db: Engine, job_id: int, **values: Any) -> None:
    """Record how far job `job_id` got (its state, stage, and when done its version or error)."""
    with writing(db) as connection:
        connection.execute(update(_jobs).where(_jobs.c.id == job_id).values(**values))


def job(db: Engine, job_id: int) -> dict[str, Any] | None:
    with db.connect() as connection:
        row = connection.execute(select(*(_jobs.c[name] for name in _SHOWN)).where(_jobs.c.id == job_id)).first()
    return dict(row._mapping) if row is not None else None


def recent(db: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest jobs first."""
    query = select(*(_jobs.c[name] for name in _SHOWN)).order_by(_jobs.c.id.desc()).limit(limit)
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def files_of(db: Engine, job_id: int) -> dict[str, str] | None:
    """The candidate files of job `job_id` (UTF-8 text by name), to run it again; None when there is no such job."""
    with db.connect() as connection:
        files = connection.execute(select(_jobs.c.files).where(_jobs.c.id == job_id)).scalar_one_or_none()
    return dict(files) if files is not None else None


def unfinished(db: Engine) -> list[dict[str, Any]]:
    """The jobs queued or running, oldest first, with their owner and heartbeat."""
    query = select(*(_jobs.c[name] for name in _SHOWN)).where(_jobs.c.state.in_(UNFINISHED)).order_by(_jobs.c.id)
    with db.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def interrupt(db: Engine, job_id: int, reason: str, now: datetime) -> bool:
    """Mark job `job_id` interrupted with `reason`, unless it finished meanwhile; whether it was."""
    with writing(db) as connection:
        done = connection.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id, _jobs.c.state.in_(UNFINISHED))
            .values(state="interrupted", stage="interrupted", error=reason, finished_at=now)
        )
        return bool(done.rowcount)
