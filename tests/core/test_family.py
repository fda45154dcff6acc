"""The family view's values (issue 18 part 6): a context names related people, each checked (a valid NHS number,
never the person themself, each once, a known relationship), old contexts without them still read, and the
people named and naming are joined, a relationship given only the other way round turned round."""

from __future__ import annotations

from typing import Any

import pytest

from wnb.core.domain import PersonContext
from wnb.core.errors import InvalidEvent
from wnb.core.family import MAX_RELATED, Relationship, related_problem, relatives
from wnb.core.nhs import is_valid_nhs_number

CHILD = "9990000018"
SISTER = "9990000026"
BROTHER = "9990000034"
MOTHER = "9990000042"


def context(*related: dict[str, Any]) -> PersonContext:
    return PersonContext.parse({"nhs_number": CHILD, "related": list(related)})


def refusal(*related: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as refused:
        PersonContext.parse({"nhs_number": CHILD, "related": list(related)})
    return refused.value


def test_a_context_names_related_people_with_their_relationship_spaces_dropped() -> None:
    found = context(
        {"nhs_number": "999 000 0026", "relationship": "sibling"}, {"nhs_number": MOTHER, "relationship": "parent"}
    )
    assert [(person.nhs_number, person.relationship) for person in found.related] == [
        (SISTER, Relationship.SIBLING),
        (MOTHER, Relationship.PARENT),
    ]


def test_a_context_without_related_people_still_reads_and_names_none() -> None:
    old = {"nhs_number": CHILD, "date_of_birth": "2019-05-01", "contacts": {"gp_practice": "Y00001 Riverside"}}
    assert PersonContext.parse(old).related == ()
    assert PersonContext.model_validate_json('{"nhs_number": "9990000018"}').related == ()  # as stored before


def test_a_related_nhs_number_must_pass_the_modulus_11_check() -> None:
    problem = refusal({"nhs_number": "9990000027", "relationship": "sibling"})
    assert problem.field == "related.0.nhs_number" and "Modulus 11" in problem.reason


def test_a_context_may_not_name_the_person_themself() -> None:
    problem = refusal({"nhs_number": SISTER, "relationship": "sibling"}, {"nhs_number": CHILD, "relationship": "other"})
    assert problem.field == "related.1.nhs_number" and "themself" in problem.reason


def test_a_context_may_not_name_one_person_twice_even_spaced_differently() -> None:
    problem = refusal(
        {"nhs_number": SISTER, "relationship": "sibling"}, {"nhs_number": "999 000 0026", "relationship": "carer"}
    )
    assert problem.field == "related.1.nhs_number" and "related.0" in problem.reason


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"nhs_number": SISTER, "relationship": "cousin"}, "related.0.relationship", "'sibling', 'half-sibling'"),
        ({"nhs_number": SISTER}, "related.0.relationship", "required field is missing"),
        ({"relationship": "sibling"}, "related.0.nhs_number", "required field is missing"),
        ({"nhs_number": SISTER, "relationship": "sibling", "note": "x"}, "related.0.note", "unknown field"),
    ],
)
def test_a_bad_related_entry_is_refused_naming_its_field(entry: dict[str, Any], field: str, words: str) -> None:
    problem = refusal(entry)
    assert problem.field == field and words in problem.reason


def test_a_context_names_at_most_a_family_of_people() -> None:
    numbers = [n for n in (f"999{i:07d}" for i in range(100, 1000)) if is_valid_nhs_number(n) and n != CHILD]
    many = [{"nhs_number": number, "relationship": "other"} for number in numbers[: MAX_RELATED + 1]]
    assert len(context(*many[:MAX_RELATED]).related) == MAX_RELATED
    problem = refusal(*many)
    assert problem.field == "related" and str(MAX_RELATED) in problem.reason


def test_related_problem_names_the_first_entry_at_fault() -> None:
    assert related_problem(CHILD, [(SISTER, Relationship.SIBLING), (BROTHER, Relationship.SIBLING)]) is None
    found = related_problem(CHILD, [(SISTER, Relationship.SIBLING), (SISTER, Relationship.HALF_SIBLING)])
    assert found is not None and found.field == "related.1.nhs_number"


def test_the_family_lists_those_named_in_order_then_those_naming_the_child_turned_round() -> None:
    named = [(SISTER, Relationship.SIBLING), (MOTHER, Relationship.PARENT)]
    naming = {BROTHER: Relationship.PARENT, SISTER: Relationship.SIBLING}  # the brother names the child his parent
    family = relatives(named, naming)
    assert [(r.nhs_number, r.relationship, r.recorded_in) for r in family] == [
        (SISTER, "sibling", "both records"),
        (MOTHER, "parent", "this child's record"),
        (BROTHER, "child", "their record"),
    ]


def test_a_person_named_as_carer_only_by_the_other_is_shown_as_cared_for() -> None:
    (relative,) = relatives([], {MOTHER: Relationship.CARER})
    assert relative.relationship == "cared for" and relative.named_there and not relative.named_here
