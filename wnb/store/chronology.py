"""What a child's chronology reads (wnb/core/chronology.py builds it): the child's outcomes, flags, tasks with
their history, the links between them and the appointments, the messages sent, and the safeguarding context."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from wnb.core import chronology
from wnb.core.wording import code_title
from wnb.store import children, communications, repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing


def entries(
    connection: Connection, nhs_number: str, titles: Callable[[str], str] = code_title
) -> list[chronology.Entry]:
    flags = list(connection.execute(select(repo.flags).where(repo.flags.c.nhs_number == nhs_number)).all())
    tasks = list(connection.execute(select(repo.tasks).where(repo.tasks.c.nhs_number == nhs_number)).all())
    history = list(
        connection.execute(
            select(repo.task_history)
            .where(repo.task_history.c.task_id.in_([task.id for task in tasks]))
            .order_by(repo.task_history.c.id)
        ).all()
    )
    flag_ids, task_ids = {flag.id for flag in flags}, {task.id for task in tasks}
    links = repo.links
    flags_of_appointment: dict[tuple[str, str], list[int]] = defaultdict(list)
    appointments_of_task: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for link in connection.execute(select(links).where(links.c.item_id.in_(flag_ids | task_ids))):
        if link.kind == "flag" and link.item_id in flag_ids:
            flags_of_appointment[(link.source, link.appointment_id)].append(link.item_id)
        elif link.kind == "task" and link.item_id in task_ids:
            appointments_of_task[link.item_id].append((link.source, link.appointment_id))
    return chronology.build(
        children.appointments(connection, nhs_number),
        flags,
        tasks,
        history,
        repo.person_context(connection, nhs_number),
        flags_of_appointment,
        appointments_of_task,
        titles,
        communications.of_person(connection, nhs_number),
    )


def export(
    db: Engine, nhs_number: str, actor: str, at: datetime, form: str, titles: Callable[[str], str] = code_title
) -> list[chronology.Entry]:
    """The chronology, its reading audited (`record_read`, view `chronology`, the form it leaves in)."""
    with writing(db) as connection:
        found = entries(connection, nhs_number, titles)
        audit = AuditLog(connection)
        audit.append(at, actor, "record_read", [nhs_number], {"view": "chronology", "format": form})
        audit.finish()
    return found
