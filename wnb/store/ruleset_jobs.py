"""The background jobs of proposals made on the pages (issue 15): the only code that touches `ruleset_job`.

A job is written when the candidate has checked and its scenarios passed; its backtest then runs in the background
(wnb.service.proposal_jobs) and the row says how far it got, and the version it stored or why it failed, so any
replica's page can show its progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from wnb.store.db import writing
from wnb.store.tables import RulesetJobRow

_jobs = RulesetJobRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_SHOWN = ("id", "state", "stage", "proposed_by", "note", "candidate", "started_at", "finished_at", "version", "error")


def start(db: Engine, files: Mapping[str, str], candidate: str, by: str, note: str | None, now: datetime) -> int:
    """A new job, queued, for the candidate `files` (UTF-8 text by name); its id."""
    with writing(db) as connection:
        values = {"state": "queued", "stage": "queued", "proposed_by": by, "note": note, "candidate": candidate}
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
