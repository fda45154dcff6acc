"""Open `letter-to-parent` tasks raised for young people of 16 or 17, before WNB-09 wrote to them instead.

DOMAIN.md §4: a young person's appointments are theirs, and a letter to a parent can break their confidence,
so WNB-09 now asks for `letter-to-young-person` from 16. Tasks raised by the earlier ruleset are not changed
by wnb (people own them); `wnb task young-person-letters` lists them for the booking team, who cancel each
one with a note and write to the young person instead. The age is the one the task's evaluations used.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from wnb.store import listing, repo
from wnb.store.audit import records_for

LETTER_TO_PARENT = "letter-to-parent"


def _young_person_ages(connection: Connection, task_ids: list[int]) -> dict[int, int]:
    """Each task's age at the latest of its evaluations that found a young person (16-17, labelled DNA)."""
    links = repo.links
    query = select(links.c.item_id, links.c.audit_seq).where(links.c.kind == "task").order_by(links.c.id)
    seqs: dict[int, list[int]] = {}
    for part in repo.in_list_slices(task_ids):
        for row in connection.execute(query.where(links.c.item_id.in_(part))):
            seqs.setdefault(row.item_id, []).append(row.audit_seq)
    wanted = sorted({seq for found in seqs.values() for seq in found})
    facts: dict[int, dict[str, Any]] = {}
    for part in repo.in_list_slices(wanted):
        for record in records_for(connection, part):
            facts[record["seq"]] = (record["payload"] or {}).get("facts") or {}
    ages: dict[int, int] = {}
    for task_id, found in seqs.items():
        for seq in found:
            seen = facts.get(seq, {})
            if seen.get("is_child") is True and seen.get("label") == "did-not-attend":
                ages[task_id] = int(seen["age_years"])
    return ages


def young_person_parent_letters(connection: Connection) -> list[dict[str, Any]]:
    """Open letter-to-parent tasks whose evaluation found a young person of 16 or 17, soonest due first."""
    open_letters = listing.tasks(connection, code=LETTER_TO_PARENT)
    ages = _young_person_ages(connection, [int(task["id"][1:]) for task in open_letters])
    return [{**task, "age_years": ages[int(task["id"][1:])]} for task in open_letters if int(task["id"][1:]) in ages]
