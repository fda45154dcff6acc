"""The plain kinds of wnb's items and people: a flag's and a task's status, and the roles (wnb.core.policy).

Plain enumerations, without the pydantic models of wnb.core.domain (which re-exports them): the command line
checks a `--role` and lists tasks without building those models (issue 17: `wnb tasks` starts at once).
"""

from __future__ import annotations

from enum import StrEnum


class FlagStatus(StrEnum):
    """FHIR Flag.status values, so flags export directly."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    ENTERED_IN_ERROR = "entered-in-error"


class TaskStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (TaskStatus.REQUESTED, TaskStatus.ACCEPTED)


class Role(StrEnum):
    """Who a person or client system is: what they may do (wnb.core.policy) and which tasks they own."""

    CLINIC_SYSTEM = "clinic-system"
    BOOKING_TEAM = "booking-team"
    CLINICIAN = "clinician"
    SAFEGUARDING_NURSE = "safeguarding-nurse"
    NAMED_NURSE = "named-nurse"
    SAFEGUARDING_LEAD = "safeguarding-lead"
    GOVERNANCE = "governance"
    CLINICAL_SAFETY_OFFICER = "clinical-safety-officer"  # signs off ruleset versions (DCB0129/DCB0160)
    ADMIN = "admin"
