"""A child's multi-agency chronology on the API (wnb/core/chronology.py): JSON, or CSV for a spreadsheet."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from wnb.api.auth import Reader
from wnb.api.downloads import csv_download
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.api.worklist import NhsNumber
from wnb.core import chronology
from wnb.service import Service
from wnb.store import chronology as stored

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class ChronologyRow(BaseModel):
    """One row of the chronology: the columns of a safeguarding partnership's chronology template."""

    at: str = Field(description="When, ISO-8601 with its offset (an appointment's time, or when wnb acted).")
    agency: str = Field(description="The agency or service: the clinic, `wnb`, or children's social care.")
    event: str = Field(description="What happened, in words.")
    significance: str = Field(description="The flag level the row is part of (red, amber), or routine.")
    action: str = Field(description="The action taken: a completion note, a reason; empty when none.")
    by: str = Field(description="By whom: the source system, `wnb`, or the person (`user:<name>`).")


class Chronology(BaseModel):
    """Every outcome, flag, task, action and safeguarding status of the child's, oldest first."""

    nhs_number: str = Field(description="The child's NHS number.")
    entries: list[ChronologyRow] = Field(description="The rows, in time order.")


@router.get(
    "/people/{nhs_number}/chronology",
    summary="A child's multi-agency chronology, JSON or CSV (an audited read)",
    response_model=Chronology,
    responses={200: {"content": {"text/csv": {}}, "description": "The chronology (JSON, or CSV with format=csv)."}},
)
def get_chronology(
    nhs_number: Annotated[NhsNumber, Path(description="The child's NHS number.")],
    request: Request,
    principal: Reader,
    form: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json (default) or csv, for a spreadsheet.")
    ] = "json",
) -> Chronology | Response:
    service: Service = request.app.state.service
    entries = stored.export(service.db, nhs_number, principal.actor, service.clock(), form, service.ruleset.title)
    if form == "csv":
        return csv_download(chronology.as_csv(entries), f"chronology-{nhs_number}.csv")
    rows = [
        ChronologyRow(
            at=e.at.isoformat(), agency=e.agency, event=e.event, significance=e.significance, action=e.action, by=e.by
        )
        for e in entries
    ]
    return Chronology(nhs_number=nhs_number, entries=rows)
