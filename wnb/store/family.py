"""What a child's family view reads (wnb/core/family.py joins it): the people the child's context names, the
people whose context names the child, and each one's active flags; each person shown is an audited read of them.

The reverse lookup reads person_context without an index (no migration: a context is a JSON document): the
stored text is matched for the child's NHS number in quotes, on SQLite and PostgreSQL alike, and each match is
then parsed and kept only when its `related` names the child (the number might stand elsewhere in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, String, cast, select

from wnb.core import policy
from wnb.core.domain import PersonContext
from wnb.core.family import Relationship, Relative, relatives
from wnb.core.policy import Action, Principal
from wnb.store import repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing


@dataclass(frozen=True, slots=True)
class FamilyFlag:
    """An active flag of a related person, as the family view shows it."""

    id: str  # F and a number
    code: str
    level: str
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A related person: who they are to the child, whose record says so, and their active flags (red first)."""

    relative: Relative
    flags: tuple[FamilyFlag, ...]


def naming(connection: Connection, nhs_number: str) -> dict[str, Relationship]:
    """The people whose context names `nhs_number` as related: their NHS number → what it is to them."""
    contexts = repo.contexts
    query = select(contexts.c.nhs_number).where(
        cast(contexts.c.document, String).like(f'%"{nhs_number}"%'), contexts.c.nhs_number != nhs_number
    )
    candidates = [row.nhs_number for row in connection.execute(query)]
    found: dict[str, Relationship] = {}
    for number, context in repo.people_contexts(connection, candidates).items():
        for person in context.related:
            if person.nhs_number == nhs_number:
                found[number] = person.relationship
    return found


def members(connection: Connection, nhs_number: str, context: PersonContext | None) -> list[Member]:
    """The child's family: the people its context names, then those naming it, each with their active flags."""
    named = [(person.nhs_number, person.relationship) for person in context.related] if context else []
    family = relatives(named, naming(connection, nhs_number))
    flags = repo.people_active_flags(connection, [relative.nhs_number for relative in family])
    found = []
    for relative in family:
        rows = sorted(flags.get(relative.nhs_number, {}).values(), key=lambda r: (r.level != "red", r.raised_at, r.id))
        shown = tuple(FamilyFlag(f"F{row.id}", row.code, row.level, row.raised_at) for row in rows)
        found.append(Member(relative, shown))
    return found


def read(
    connection: Connection,
    audit: AuditLog,
    nhs_number: str,
    context: PersonContext | None,
    at: datetime,
    principal: Principal,
    view: str,
) -> list[Member] | None:
    """`members`, each person shown audited as a read of their record (`record_read`, in the family view of
    `nhs_number`), in the caller's transaction; None when `principal` may not see a family view (`family.read`):
    then nobody related is read and nothing is audited."""
    if not policy.allows(principal, Action.FAMILY_READ):
        return None
    found = members(connection, nhs_number, context)
    for member in found:
        detail = {"view": view, "family_of": nhs_number, **principal.via_detail}
        audit.append(at, principal.actor, "record_read", [member.relative.nhs_number], detail)
    return found


def export(db: Engine, nhs_number: str, principal: Principal, at: datetime, view: str) -> list[Member]:
    """The family view of `nhs_number` in a transaction of its own: the child's record is read (its context names
    the family) and so is each person shown, each audited. Forbidden unless `principal` may (`family.read`)."""
    policy.check(principal, Action.FAMILY_READ)
    with writing(db) as connection:
        audit = AuditLog(connection)
        audit.append(at, principal.actor, "record_read", [nhs_number], {"view": view, **principal.via_detail})
        found = read(connection, audit, nhs_number, repo.person_context(connection, nhs_number), at, principal, view)
        audit.finish()
    return found or []
