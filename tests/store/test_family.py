"""The family view on both stores (issue 18 part 6): a child's related people, named by its context or naming it
in theirs, with their active flags; each person shown is one audited read of that person, and a role without
`family.read` reads nobody related and leaves no record of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.factories import event, raw
from wnb.core.domain import Role
from wnb.core.errors import Forbidden
from wnb.core.items import RawItem
from wnb.core.policy import Kind, Principal
from wnb.service import Service
from wnb.store import audit, family, listing, repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing

STORES = ("sqlite", "postgres")

CHILD = "9990000018"
SISTER = "9990000026"  # on a child-protection plan, not brought: a red flag
MOTHER = "9990000042"  # no flags
BROTHER = "9990000034"  # names the child in his own context only
STRANGER = "9990000050"  # the child's NHS number stands in her context, but not as related
PLAN = [{"kind": "child-protection-plan", "start": "2025-06-01"}]
NURSE = Principal(Kind.USER, "nurse.jo", Role.SAFEGUARDING_NURSE)
BOOKING = Principal(Kind.USER, "booking.al", Role.BOOKING_TEAM)


def contexts(service: Service, *records: dict[str, Any]) -> None:
    items = [RawItem(index, json.dumps(record), record) for index, record in enumerate(records, 1)]
    assert service.import_context(items, origin="register")["rejected"] == 0


@pytest.fixture
def families(service: Service) -> Service:
    contexts(
        service,
        {
            "nhs_number": CHILD,
            "date_of_birth": "2019-05-01",
            "related": [
                {"nhs_number": SISTER, "relationship": "sibling"},
                {"nhs_number": MOTHER, "relationship": "parent"},
            ],
        },
        {"nhs_number": SISTER, "date_of_birth": "2017-01-01", "statuses": PLAN},
        {"nhs_number": MOTHER, "date_of_birth": "1990-01-01"},
        {
            "nhs_number": BROTHER,
            "date_of_birth": "2014-02-10",
            "statuses": PLAN,
            "related": [{"nhs_number": CHILD, "relationship": "sibling"}],
        },
        {"nhs_number": STRANGER, "date_of_birth": "2009-03-15", "contacts": {"note": CHILD}},
    )
    for number, event_id in ((SISTER, "s1"), (BROTHER, "b1"), (STRANGER, "x1")):
        service.ingest_one(raw(event(event_id, nhs_number=number, date_of_birth=None)), origin="feed")
    return service


def family_reads(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == "record_read").order_by(audit._audit.c.seq)
        return [dict(row._mapping) for row in connection.execute(query)]


def test_the_family_view_shows_each_related_persons_active_flags_and_audits_each_as_read(families: Service) -> None:
    brother_flags = {flag["code"] for flag in _active(families, BROTHER)}
    members = family.export(families.db, CHILD, NURSE, families.clock(), "family")
    shown = [(m.relative.nhs_number, m.relative.relationship, m.relative.recorded_in) for m in members]
    assert shown == [
        (SISTER, "sibling", "this child's record"),
        (MOTHER, "parent", "this child's record"),
        (BROTHER, "sibling", "their record"),
    ]  # the stranger, whose context holds the number only as a note, is no relative
    sister, mother, brother = members
    assert [(flag.code, flag.level) for flag in sister.flags] == [("safeguarding-plan-wnb", "red")]
    assert mother.flags == () and {flag.code for flag in brother.flags} == brother_flags
    assert sister.flags[0].id == _active(families, SISTER)[0]["id"]
    reads = family_reads(families)
    assert [(r["subject"], r["actor"]) for r in reads] == [
        ([CHILD], "user:nurse.jo"),
        ([SISTER], "user:nurse.jo"),
        ([MOTHER], "user:nurse.jo"),
        ([BROTHER], "user:nurse.jo"),
    ]
    assert reads[0]["payload"] == {"view": "family"}
    assert all(r["payload"] == {"view": "family", "family_of": CHILD} for r in reads[1:])


def test_a_resolved_flag_of_a_related_child_is_not_shown(families: Service) -> None:
    (flag,) = _active(families, SISTER)
    families.resolve_flag(flag["id"], NURSE, "seen at home, safe")
    members = family.export(families.db, CHILD, NURSE, families.clock(), "family")
    assert members[0].relative.nhs_number == SISTER and members[0].flags == ()


def test_a_role_without_the_family_view_reads_nobody_related_and_leaves_no_record_of_them(families: Service) -> None:
    with pytest.raises(Forbidden, match="family view"):
        family.export(families.db, CHILD, BOOKING, families.clock(), "family")
    with writing(families.db) as connection:
        log = AuditLog(connection)
        found = family.read(
            connection, log, CHILD, repo.person_context(connection, CHILD), families.clock(), BOOKING, "x"
        )
        log.finish()
    assert found is None
    assert family_reads(families) == []


def test_the_reverse_lookup_finds_only_contexts_whose_related_names_the_child(families: Service) -> None:
    with families.db.connect() as connection:
        assert family.naming(connection, CHILD) == {BROTHER: "sibling"}
        assert family.naming(connection, MOTHER) == {CHILD: "parent"}  # her own context names nobody
        assert family.naming(connection, STRANGER) == {}
        (child,) = family.members(connection, MOTHER, repo.person_context(connection, MOTHER))
    assert (child.relative.nhs_number, child.relative.relationship, child.relative.recorded_in) == (
        CHILD,
        "child",
        "their record",
    )


def test_a_child_without_context_has_only_the_people_naming_it(families: Service) -> None:
    contexts(families, {"nhs_number": MOTHER, "related": [{"nhs_number": "9990000069", "relationship": "parent"}]})
    with families.db.connect() as connection:
        (member,) = family.members(connection, "9990000069", None)
    assert (member.relative.nhs_number, member.relative.relationship) == (MOTHER, "child")


def _active(service: Service, number: str) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.flags(connection, nhs_number=number)
