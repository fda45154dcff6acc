"""Tasks for the `admin` role about the service itself (a silent clinic feed, a stalled sweep), not a child.

Such a task has no NHS number (empty) and a service naming what it is about (`feed:pas`, `scheduler`), so the
open-task unique index (person, service, code) keeps at most one open per subject, across replicas too. It is
created with its history row and audit record in one transaction, like every other task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from wnb.core.domain import Role, TaskStatus
from wnb.store import repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing

log = structlog.get_logger("wnb.service.admin_tasks")  # its name before it joined the store: logs read the same
NO_CHILD = ""


def open_admin_task(
    db: Engine, about: str, code: str, note: str, details: dict[str, Any], now: datetime, actor: str = "scheduler"
) -> str | None:
    """Open an admin task `code` about `about` unless one is open; its id, or None when one was open already."""
    try:
        with writing(db) as connection:
            task_id, opened = admin_task_in(connection, about, code, note, details, now, actor)
    except IntegrityError:  # another replica opened it in the meantime: one task is what we want
        return None
    if not opened:
        return None
    log.warning("admin_task_opened", code=code, about=about, task=f"T{task_id}")
    return f"T{task_id}"


def admin_task_in(
    connection: Connection,
    about: str,
    code: str,
    note: str,
    details: dict[str, Any],
    now: datetime,
    actor: str = "scheduler",
) -> tuple[int, bool]:
    """In the caller's transaction: the open admin task `code` about `about`, opened now unless one was open.

    Its id and whether it was opened now; the caller commits (and logs), so a task can be opened together with
    the change it reports (an outbox row marked `uncertain` and linked to its task, in one transaction).
    """
    open_task = connection.execute(
        select(repo.tasks.c.id).where(
            repo.tasks.c.nhs_number == NO_CHILD,
            repo.tasks.c.service == about,
            repo.tasks.c.code == code,
            repo.tasks.c.status.in_(repo.OPEN_STATUSES),
        )
    ).first()
    if open_task is not None:
        return int(open_task.id), False
    task = {
        "nhs_number": NO_CHILD,
        "service": about,
        "code": code,
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
    history = {"task_id": task_id, "at": now, "actor": actor, "action": "created", "note": note}
    history.update({key: task[key] for key in ("status", "owner_role", "due_at", "escalation_level")})
    repo.insert_row(connection, repo.task_history, history)
    audit = AuditLog(connection)
    payload = {"code": code, "service": about, "owner_role": Role.ADMIN, "due_at": now, "reason": note}
    audit.append(now, actor, "task_created", [f"T{task_id}"], {**payload, **details})
    audit.finish()
    return task_id, True


def open_tasks_about(connection: Connection, code: str) -> list[tuple[int, str]]:
    """The open admin tasks `code`, oldest first: each one's id and what it is about (its `service`)."""
    tasks = repo.tasks
    rows = connection.execute(
        select(tasks.c.id, tasks.c.service)
        .where(tasks.c.nhs_number == NO_CHILD, tasks.c.code == code, tasks.c.status.in_(repo.OPEN_STATUSES))
        .order_by(tasks.c.id)
    )
    return [(int(row.id), row.service) for row in rows]
