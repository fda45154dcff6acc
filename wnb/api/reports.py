"""The governance dashboard's figures for analysts: JSON, or CSV with `format=csv` or `Accept: text/csv`.

The same figures as the governance page (wnb.store.reports), for the same roles (`governance.read`), by API key
or HTTP Basic. Figures only: counts and medians per rule, level, role and source, never a child's record.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from wnb.api.auth import GovernanceReader
from wnb.api.downloads import csv_download
from wnb.api.problems import PROBLEM_RESPONSES, Problem
from wnb.core.calendar import london_date
from wnb.core.csv_cells import csv_text
from wnb.core.errors import WnbError
from wnb.service import Service
from wnb.service.simulate import period_of
from wnb.store.reports import Dashboard, PeriodBy, dashboard

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

DEFAULT_DAYS = 30


class ReportFormat(StrEnum):
    """How the figures come back: JSON (the default) or CSV."""

    JSON = "json"
    CSV = "csv"


class Period(BaseModel):
    """The days the figures cover and what dates them."""

    first_day: date = Field(description="The first day of the period (UK date), included.")
    last_day: date = Field(description="The last day of the period (UK date), included.")
    starts_at: str = Field(description="The period's first instant: London midnight starting `first_day`, UTC.")
    ends_at: str = Field(description="The instant after the period: London midnight after `last_day`, UTC.")
    by: PeriodBy = Field(
        description="`appointment`: figures of the appointments in the period (an evaluation by its event's "
        "appointment, a flag or task by the appointment that raised it, a task's acknowledgements, completions "
        "and escalations by that task's appointment); `processed`: by when wnb received or processed them. "
        "Rejected rows and admin tasks, which have no appointment, are dated as processed either way."
    )


class RuleFigures(BaseModel):
    """What one rule did in the period."""

    rule_id: str = Field(description="The rule's id, e.g. `WNB-06` (docs/decision-chart.md).")
    title: str | None = Field(description="The rule's title in the current ruleset; null when it has no such rule.")
    fired: int = Field(description="Evaluations in which it fired.")
    flags_raised: int = Field(description="Flags it raised (or helped raise).")
    tasks_raised: int = Field(description="Tasks it raised (or helped raise).")


class LevelFigures(BaseModel):
    """Flags raised at one level."""

    level: str = Field(description="red or amber.")
    flags_raised: int = Field(description="Flags raised at this level.")


class RoleFigures(BaseModel):
    """What became of the tasks of one role."""

    role: str = Field(description="The role, e.g. `safeguarding-nurse`.")
    tasks_raised: int = Field(description="Tasks raised with this role as their first owner.")
    acknowledged: int = Field(description="Acknowledgements by this role.")
    median_hours_to_acknowledge: float | None = Field(
        description="Median hours from a task's creation to its acknowledgement; null when none."
    )
    completed: int = Field(description="Completions by this role.")
    median_hours_to_complete: float | None = Field(
        description="Median hours from a task's creation to its completion; null when none."
    )
    escalated_to: int = Field(description="Escalations to this role.")
    overdue_now: int = Field(description="Tasks of this role not acknowledged and past due now, whatever the period.")


class SourceFigures(BaseModel):
    """What one clinic system sent."""

    source: str = Field(description="The clinic system (or, for a row with no source, where it came from).")
    accepted: int = Field(description="Events accepted (current or superseded).")
    stale: int = Field(description="Events stored as stale: older than the outcome already stored.")
    rejected: int = Field(description="Distinct rows refused, by when first received.")


class GovernanceReport(BaseModel):
    """The governance dashboard's figures for a period."""

    period: Period = Field(description="The days covered and what dates them.")
    evaluations: int = Field(description="Evaluations of appointments against the rules.")
    rules: list[RuleFigures] = Field(description="Per rule that fired or raised something, by rule id.")
    flag_levels: list[LevelFigures] = Field(description="Flags raised per level.")
    roles: list[RoleFigures] = Field(description="Per role with tasks raised, acted on, escalated to or overdue.")
    sources: list[SourceFigures] = Field(description="Per clinic system that sent events or refused rows.")


def _report(board: Dashboard, first: date, last: date, titles: dict[str, str]) -> GovernanceReport:
    timings = {timing.role: timing for timing in board.timings}
    roles = sorted(set(board.tasks_by_role) | set(timings) | set(board.overdue_by_role) | set(board.escalated_by_role))
    return GovernanceReport(
        period=Period(
            first_day=first,
            last_day=last,
            starts_at=board.start.isoformat(),
            ends_at=board.end.isoformat(),
            by=board.by,
        ),
        evaluations=board.evaluations,
        rules=[
            RuleFigures(
                rule_id=rule,
                title=titles.get(rule),
                fired=board.fired[rule],
                flags_raised=board.flags_by_rule[rule],
                tasks_raised=board.tasks_by_rule[rule],
            )
            for rule in board.rules
        ],
        flag_levels=[
            LevelFigures(level=level, flags_raised=number) for level, number in sorted(board.flags_by_level.items())
        ],
        roles=[
            RoleFigures(
                role=role,
                tasks_raised=board.tasks_by_role[role],
                acknowledged=timings[role].acknowledged if role in timings else 0,
                median_hours_to_acknowledge=timings[role].median_hours_to_ack if role in timings else None,
                completed=timings[role].completed if role in timings else 0,
                median_hours_to_complete=timings[role].median_hours_to_complete if role in timings else None,
                escalated_to=board.escalated_by_role[role],
                overdue_now=board.overdue_by_role[role],
            )
            for role in roles
        ],
        sources=[
            SourceFigures(source=feed.source, accepted=feed.accepted, stale=feed.stale, rejected=feed.rejected)
            for feed in board.feeds
        ],
    )


_CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The figures as JSON, or as CSV (section, name, measure, value; formula-like cells escaped).",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/reports/governance",
    response_model=GovernanceReport,
    responses=_CSV,
    summary="The governance dashboard's figures for a period, as JSON or CSV",
)
def governance_report(
    request: Request,
    principal: GovernanceReader,
    first: Annotated[
        date | None, Query(alias="from", description="The first day (UK date), included; default 29 days before `to`.")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="The last day (UK date), included; default today.")
    ] = None,
    by: Annotated[
        PeriodBy, Query(description="Date figures by their appointments (the default) or by when wnb processed them.")
    ] = PeriodBy.APPOINTMENT,
    format: Annotated[
        ReportFormat | None, Query(description="`json` or `csv`; without it, CSV when Accept asks for text/csv.")
    ] = None,
    accept: Annotated[str, Header(description="`text/csv` asks for CSV when `format` is not given.")] = "",
) -> GovernanceReport | Response:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    last_day = last or london_date(now)
    first_day = first or last_day - timedelta(days=DEFAULT_DAYS - 1)
    try:
        start, end = period_of(first_day, last_day)
    except WnbError as problem:
        raise Problem(422, "to", str(problem)) from None
    with wnb.db.connect() as connection:
        board = dashboard(connection, start, end, now, by)
    wants_csv = format is ReportFormat.CSV or (format is None and "text/csv" in accept.lower())
    if wants_csv:
        name = f"wnb-governance-{first_day.isoformat()}-to-{last_day.isoformat()}.csv"
        return csv_download(csv_text(board.csv_rows()), name)  # formula-like cells escaped (wnb/core/csv_cells.py)
    return _report(board, first_day, last_day, {rule.id: rule.title for rule in wnb.ruleset.rules})
