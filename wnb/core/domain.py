"""The values that flow through wnb: events, person context, appointments, decisions (frozen).

The statuses and roles are plain enumerations of wnb.core.kinds (read without pydantic), the domain's too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from wnb.core.calendar import london_date
from wnb.core.contacts import Contact
from wnb.core.errors import InvalidEvent
from wnb.core.family import MAX_RELATED, Relationship, related_problem
from wnb.core.kinds import FlagStatus as FlagStatus
from wnb.core.kinds import Role as Role
from wnb.core.kinds import TaskStatus as TaskStatus
from wnb.core.limits import year_problem
from wnb.core.nhs import (
    Attendance,
    Outcome,
    Priority,
    nhs_number_problem,
    normalise_nhs_number,
    parse_attendance,
    parse_outcome,
    parse_priority,
)


class Level(StrEnum):
    AMBER = "amber"
    RED = "red"


class StatusKind(StrEnum):
    """The kinds of safeguarding status the child register records."""

    CHILD_PROTECTION_PLAN = "child-protection-plan"
    LOOKED_AFTER = "looked-after"
    CHILD_IN_NEED = "child-in-need"
    EARLY_HELP = "early-help"


class EventState(StrEnum):
    """What became of an accepted event (DOMAIN.md §6 Input)."""

    CURRENT = "current"  # the appointment's outcome now
    SUPERSEDED = "superseded"  # replaced by a later-recorded event for the same appointment
    STALE = "stale"  # arrived with a recorded_at not later than the current one: never evaluated


def _checked_nhs_number(value: object) -> str:
    text = normalise_nhs_number(str(value)) if value is not None else ""
    if problem := nhs_number_problem(text):
        raise ValueError(problem)
    return text


# Ten digits passing Modulus 11 (DOMAIN.md §2.2); spaces on input are dropped.
NhsNumber = Annotated[str, BeforeValidator(_checked_nhs_number)]


_Dated = TypeVar("_Dated", bound=date | None)  # a datetime is a date


def _in_years(value: _Dated, field: str) -> _Dated:
    """A date within the years wnb accepts (wnb.core.limits); one far outside would overflow on conversion."""
    if problem := year_problem(value):
        raise InvalidEvent(field, problem)
    return value


# The example the OpenAPI document shows for an event: a seven-year-old not brought to an appointment.
EXAMPLE_EVENT: dict[str, Any] = {
    "source": "pas",
    "event_id": "pas-000123",
    "nhs_number": "9990000018",
    "date_of_birth": "2019-05-01",
    "service": "community-paediatrics",
    "appointment_id": "A-2026-0042",
    "appointment_at": "2026-03-02T10:00:00+00:00",
    "attendance": "did-not-attend",
    "priority": "routine",
    "recorded_at": "2026-03-02T11:30:00+00:00",
}


def _to_utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidEvent(field, "a time needs a UTC offset, e.g. 2026-03-02T10:00:00+00:00")
    return value.astimezone(UTC)


class AttendanceEvent(BaseModel):
    """One appointment outcome from a clinic system, as docs/architecture.md ("The canonical event") describes it.

    Unknown fields are rejected, naming the field.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [EXAMPLE_EVENT]},
    )

    source: str = Field(
        min_length=1,
        max_length=100,
        description="The clinic system that sent the event, e.g. `pas`; a client's key writes only its own sources.",
    )
    event_id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique within the source: a repeated (`source`, `event_id`) is a duplicate, ignored.",
    )
    nhs_number: NhsNumber = Field(description="Ten digits that pass the Modulus 11 check; spaces are dropped.")
    date_of_birth: date | None = Field(
        default=None, description="ISO-8601 date; when absent, the one in the person's safeguarding context is used."
    )
    service: str = Field(
        min_length=1,
        max_length=100,
        description="The clinic or team, e.g. `community-paediatrics`: counts 'in this service' are per service.",
    )
    appointment_id: str = Field(
        min_length=1,
        max_length=200,
        description="The appointment, within the source: a later event for it replaces its outcome (or is stale).",
    )
    appointment_at: datetime = Field(description="When the appointment was: ISO-8601 with a UTC offset.")
    attendance: Attendance = Field(
        description="What happened, by name or by its NHS Data Dictionary code (ATTENDED OR DID NOT ATTEND): "
        "attended 5, attended-late 6, late-not-seen 7, did-not-attend 3, cancelled-by-patient 2, "
        "cancelled-by-provider 4, booked 0, entered-in-error (withdraws the appointment's earlier outcome)."
    )
    priority: Priority | None = Field(
        default=None, description="The referral's priority, by name or code: routine 1, urgent 2, two-week-wait 3."
    )
    outcome: Outcome | None = Field(
        default=None,
        description="The outcome of attendance, by name or code: discharged 1, another-appointment 2, "
        "appointment-to-be-made-later 3.",
    )
    first_appointment: bool | None = Field(
        default=None, description="The source's word that this was the person's first appointment in the service."
    )
    recorded_at: datetime | None = Field(
        default=None,
        description="When the source recorded the outcome, ISO-8601 with a UTC offset: due times count from it "
        "(from when wnb received the event, when absent), and it orders two events for one appointment.",
    )

    @field_validator("attendance", mode="before")
    @classmethod
    def _attendance(cls, value: object) -> Attendance:
        return parse_attendance(value)

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> Priority | None:
        return None if value in (None, "") else parse_priority(value)

    @field_validator("outcome", mode="before")
    @classmethod
    def _outcome(cls, value: object) -> Outcome | None:
        return None if value in (None, "") else parse_outcome(value)

    @field_validator("date_of_birth", "recorded_at", "first_appointment", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("appointment_at", "recorded_at")
    @classmethod
    def _aware(cls, value: datetime | None, info: Any) -> datetime | None:
        return None if value is None else _to_utc(_in_years(value, info.field_name), info.field_name)

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_years(cls, value: date | None, info: Any) -> date | None:
        return _in_years(value, info.field_name)

    @model_validator(mode="after")
    def _not_before_birth(self) -> AttendanceEvent:
        if self.date_of_birth and london_date(self.appointment_at) < self.date_of_birth:
            raise InvalidEvent("appointment_at", "the appointment is dated before the date of birth")
        return self

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> AttendanceEvent:
        """Validate a raw row; any problem becomes one InvalidEvent naming the first bad field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            raise invalid_event_from(error) from None


_EXAMPLE_TIME = "2026-03-02T10:00:00+00:00"


def invalid_event_from(error: ValidationError) -> InvalidEvent:
    """The first problem of a pydantic error as an InvalidEvent that names its field."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "event"
    message = str(first["msg"])
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    if first["type"].startswith(("datetime_", "date_")):
        kind, example = ("date", "2026-03-02") if first["type"].startswith("date_") else ("date-time", _EXAMPLE_TIME)
        message = f"{first['input']!r} is not an ISO-8601 {kind} (e.g. {example})"
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InvalidEvent):
        return InvalidEvent(cause.field if field == "event" else field, cause.reason)
    message = message.removeprefix("Value error, ")
    return InvalidEvent(field, message)


class SafeguardingStatus(BaseModel):
    """A child-protection plan, looked-after status, child in need or early help, over the dates it held."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StatusKind = Field(description="child-protection-plan, looked-after, child-in-need or early-help.")
    start: date = Field(description="The first day it held (ISO-8601 date).")
    end: date | None = Field(
        default=None,
        description="The last day it held, if it has ended; a child-protection plan or looked-after status still "
        "counts for 365 days after (a ruleset parameter).",
    )


class RelatedPerson(BaseModel):
    """A person related to the person of the context (wnb.core.family): a sibling, parent, carer …"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nhs_number: NhsNumber = Field(description="Their NHS number: ten digits that pass the Modulus 11 check.")
    relationship: Relationship = Field(
        description="Who they are to the person of the context: sibling, half-sibling, parent, carer or other."
    )


class PersonContext(BaseModel):
    """A person's safeguarding context from the local child register (docs/readings.md, "Safeguarding context")."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "nhs_number": "9990000018",
                    "date_of_birth": "2019-05-01",
                    "statuses": [{"kind": "child-protection-plan", "start": "2025-11-01"}],
                    "contacts": {"social_worker": "Duty team, Northshire Children's Services"},
                    "structured_contacts": [
                        {"role": "gp-practice", "ods_code": "Y00001"},
                        {
                            "role": "social-worker",
                            "organisation": "Northshire Children's Services",
                            "person": "A. Duty",
                            "email": "duty.team@northshire.gov.uk",
                        },
                    ],
                    "related": [{"nhs_number": "9990000026", "relationship": "sibling"}],
                }
            ]
        },
    )

    nhs_number: NhsNumber = Field(description="Ten digits that pass the Modulus 11 check; spaces are dropped.")
    date_of_birth: date | None = Field(
        default=None, description="ISO-8601 date; used for an event that gives none (an event's own wins)."
    )
    statuses: tuple[SafeguardingStatus, ...] = Field(
        default=(), description="Every safeguarding status the person has had, each with its dates."
    )
    complex_health_needs: bool = Field(
        default=False, description="A child with complex health needs (rules WNB-04, WNB-05)."
    )
    care_and_support_needs: bool = Field(
        default=False,
        description="An adult who depends on a carer to attend (labelled adult-not-brought; rule WNB-11).",
    )
    contacts: dict[str, Any] = Field(
        default_factory=dict,
        description="Who to tell, by role (e.g. `social_worker`, `lead_professional`, `gp_practice`, "
        "`health_visitor`, `school_nurse`): a text or an object of texts each; shown on the child's page, and "
        "listed on the data-quality page as needing structure until `structured_contacts` gives that role.",
    )
    structured_contacts: tuple[Contact, ...] = Field(
        default=(),
        description="Contacts a machine can use: each a `role` (gp-practice, social-worker, lead-professional, "
        "health-visitor, school-nurse) with an `organisation` and its `ods_code`, a `person`, a secure `email` "
        "and an https `endpoint` (FHIR); one naming only an ODS code is completed from the recipient directory.",
    )
    related: tuple[RelatedPerson, ...] = Field(
        default=(),
        max_length=MAX_RELATED,
        description="Related people, each once and never the person themself: an `nhs_number` and a "
        "`relationship` (sibling, half-sibling, parent, carer, other: who they are to this person). A child's page "
        "shows their active flags to the safeguarding team (the family view), each an audited read of them.",
    )

    @model_validator(mode="after")
    def _related_are_others(self) -> PersonContext:
        problem = related_problem(self.nhs_number, ((r.nhs_number, r.relationship) for r in self.related))
        if problem is not None:
            raise problem
        return self

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> PersonContext:
        """Validate a context record; any problem becomes one InvalidEvent naming the first bad field.

        Its dates must lie within the years wnb accepts (checked here, not on the model: a record stored
        before that limit still loads).
        """
        try:
            context = cls.model_validate(raw)
        except ValidationError as error:
            raise invalid_event_from(error) from None
        _in_years(context.date_of_birth, "date_of_birth")
        for index, status in enumerate(context.statuses):
            _in_years(status.start, f"statuses.{index}.start")
            _in_years(status.end, f"statuses.{index}.end")
        return context


@dataclass(frozen=True, slots=True, kw_only=True)
class Appointment:
    """An appointment as it stands: the outcome of its current event (history for facts).

    A dataclass: built from events already validated, many times per evaluation.
    """

    source: str
    appointment_id: str
    service: str
    appointment_at: datetime
    attendance: Attendance
    priority: Priority | None = None
    outcome: Outcome | None = None
    recorded_at: datetime
    event_pk: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.appointment_id)


@dataclass(frozen=True, slots=True)
class FlagDecision:
    code: str
    level: Level
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaskDecision:
    code: str
    service: str
    owner_role: Role
    due_at: datetime
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one evaluation asks for: the fired rules, and the flags and tasks they combine into.

    Dataclasses, not pydantic models: made on every evaluation and never crossing a boundary unchecked.
    """

    fired: tuple[str, ...]
    flags: tuple[FlagDecision, ...] = ()
    tasks: tuple[TaskDecision, ...] = ()

    def asked_for(self) -> dict[str, Any]:
        """The flags and tasks asked for, as plain values for the audit log."""
        return {
            "flags": [{"code": f.code, "level": f.level.value, "rule_ids": list(f.rule_ids)} for f in self.flags],
            "tasks": [
                {
                    "code": t.code,
                    "service": t.service,
                    "owner_role": t.owner_role.value,
                    "due_at": t.due_at.isoformat(),
                    "rule_ids": list(t.rule_ids),
                }
                for t in self.tasks
            ],
        }
