"""A child's family view on the API (wnb/core/family.py): the related people and their active flags, for the
safeguarding team; the child and each person shown are audited as read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from wnb.api.auth import FamilyReader
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.api.worklist import NhsNumber
from wnb.service import Service
from wnb.store import family

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class RelativeFlag(BaseModel):
    """An active flag of a related person."""

    id: str = Field(description="`F` and a number, e.g. `F12`.")
    code: str = Field(description="What the flag says, e.g. `repeat-wnb` (docs/decision-chart.md).")
    level: str = Field(description="red or amber.")
    raised_at: str = Field(description="When it was raised, ISO-8601 UTC.")


class Relative(BaseModel):
    """A person related to the child, and their active flags (red first)."""

    nhs_number: str = Field(description="Their NHS number.")
    relationship: str = Field(
        description="Who they are to the child: sibling, half-sibling, parent, carer, other; for a person only their "
        "own context names the child, turned round (child, cared for)."
    )
    named_in_child_context: bool = Field(description="The child's context names them (`related`).")
    names_child: bool = Field(description="Their own context names the child.")
    flags: list[RelativeFlag] = Field(description="Their active flags, red first, each level in the order raised.")


class Family(BaseModel):
    """The family view of one child."""

    nhs_number: str = Field(description="The child's NHS number.")
    family: list[Relative] = Field(
        description="The people the child's context names, in its order, then those whose context names the child."
    )


@router.get(
    "/people/{nhs_number}/family",
    summary="A child's family view: related people's active flags (an audited read of each)",
    response_model=Family,
)
def get_family(
    nhs_number: Annotated[NhsNumber, Path(description="The child's NHS number.")],
    request: Request,
    principal: FamilyReader,
) -> Family:
    service: Service = request.app.state.service
    members = family.export(service.db, nhs_number, principal, service.clock(), "family")
    return Family(
        nhs_number=nhs_number,
        family=[
            Relative(
                nhs_number=member.relative.nhs_number,
                relationship=member.relative.relationship,
                named_in_child_context=member.relative.named_here,
                names_child=member.relative.named_there,
                flags=[
                    RelativeFlag(id=flag.id, code=flag.code, level=flag.level, raised_at=flag.raised_at.isoformat())
                    for flag in member.flags
                ],
            )
            for member in members
        ],
    )
