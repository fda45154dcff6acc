"""A child's family (issue 18 part 6): the related people a safeguarding context names, checked, and joined
with the people whose own context names the child.

A context's `related` entry says who another person is *to the person of the context*: `{"nhs_number": Y,
"relationship": "parent"}` in X's context means Y is X's parent. Relationships need not be recorded both ways,
so the family view also shows the people whose context names this child, with the relationship turned round
(named as their parent, this child's child). Pure: values and checks, no store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from wnb.core.errors import InvalidEvent

MAX_RELATED = 30  # related people one context may name: a family, never a register


class Relationship(StrEnum):
    """Who a related person is to the person whose context names them."""

    SIBLING = "sibling"
    HALF_SIBLING = "half-sibling"
    PARENT = "parent"
    CARER = "carer"
    OTHER = "other"


# What the person naming is to the person named: X names Y as X's parent, so X is Y's child.
_TURNED_ROUND = {
    Relationship.SIBLING: "sibling",
    Relationship.HALF_SIBLING: "half-sibling",
    Relationship.PARENT: "child",
    Relationship.CARER: "cared for",
    Relationship.OTHER: "other",
}


def related_problem(own: str, related: Iterable[tuple[str, Relationship]]) -> InvalidEvent | None:
    """Why a context's related people cannot be taken (one naming the person themself, a person named twice),
    naming the entry's field, or None. Each NHS number has already passed its Modulus 11 check."""
    seen: dict[str, int] = {}
    for index, (number, _) in enumerate(related):
        field = f"related.{index}.nhs_number"
        if number == own:
            return InvalidEvent(field, "names the person themself: a related person is someone else")
        if number in seen:
            return InvalidEvent(field, f"names {number} again (already related.{seen[number]}): name each person once")
        seen[number] = index
    return None


@dataclass(frozen=True, slots=True)
class Relative:
    """A person of a child's family view: who they are to the child, and whose record says so."""

    nhs_number: str
    relationship: str  # in words, as the child's family view says it
    named_here: bool  # the child's own context names them
    named_there: bool  # their context names the child

    @property
    def recorded_in(self) -> str:
        """Whose record gives the relationship, in words."""
        if self.named_here and self.named_there:
            return "both records"
        return "this child's record" if self.named_here else "their record"


def relatives(named: Iterable[tuple[str, Relationship]], naming: Mapping[str, Relationship]) -> list[Relative]:
    """The child's family: those its context names (`named`, in its order, with the relationship it gives),
    then those whose context names the child (`naming`: their NHS number → what the child is to them), by NHS
    number, the relationship turned round. A person in both is shown once, as the child's context says."""
    found = [
        Relative(number, relationship.value, named_here=True, named_there=number in naming)
        for number, relationship in named
    ]
    here = {relative.nhs_number for relative in found}
    found += [
        Relative(number, _TURNED_ROUND[relationship], named_here=False, named_there=True)
        for number, relationship in sorted(naming.items())
        if number not in here
    ]
    return found
