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
    # Sent to the recipient named in the person's context (issue 18): still open, waiting for them to say they
    # have it; completed by their acknowledgement or by the owner, back to requested when the send fails.
    AWAITING_ACKNOWLEDGEMENT = "awaiting-acknowledgement"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.AWAITING_ACKNOWLEDGEMENT)


# Every status a task is open in (the one-open-task index, the worklist, the sweeps): wnb.core.plan re-exports it.
OPEN_TASK_STATUSES = tuple(status.value for status in TaskStatus if status.is_open)
# The FHIR Task.status of each wnb status that is not FHIR's own word.
FHIR_TASK_STATUS = {TaskStatus.AWAITING_ACKNOWLEDGEMENT.value: "in-progress"}
# The condition on `status` of an open task, as SQL (the partial unique index of wnb.store.tables, its migrations).
OPEN_TASK_CONDITION = "status IN (" + ", ".join(f"'{status}'" for status in OPEN_TASK_STATUSES) + ")"


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
