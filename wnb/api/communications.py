"""Sharing information from a task (issue 18 part 2): send the task's message to the recipient named in the
child's context (`POST /v1/tasks/{task_id}/communications`), read one (an audited read), mark a letter sent; and
a partner's system acknowledges one sent to its recipient (part 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from wnb.api.auth import Acknowledger, Reader, Sender
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.service import Service
from wnb.store.communications import Communication

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class SendBody(BaseModel):
    """How the task's message goes to its recipient."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["letter", "email", "fhir"] = Field(
        description="letter (printed, then marked sent), email (only to a configured secure domain, over "
        "STARTTLS) or fhir (a FHIR R4 Communication posted, signed, to the recipient's endpoint)."
    )


class Message(BaseModel):
    """A message sent from an information-sharing task, and where it stands."""

    id: str = Field(description="`M` and a number, e.g. `M3`.")
    reference: str = Field(description="The message's reference, quoted by its recipient, e.g. `WNB-T12-1`.")
    task_id: str = Field(description="The task it was sent from, e.g. `T12`.")
    nhs_number: str = Field(description="The child's NHS number.")
    recipient_role: str = Field(description="gp-practice, social-worker, lead-professional, health-visitor, …")
    recipient_name: str = Field(description="Whom it is to: the person and organisation named.")
    recipient_ods: str | None = Field(description="The organisation's ODS code, when known.")
    channel: str = Field(description="letter, email or fhir.")
    status: str = Field(
        description="awaiting-send (a letter not yet marked sent), sent, failed, uncertain, acknowledged or "
        "not-acknowledged."
    )
    status_reason: str | None = Field(description="Why it failed or is uncertain, when it did or is.")
    content: dict[str, Any] = Field(description="What it says: the minimum necessary (README, Sharing information).")
    created_at: datetime = Field(description="When it was made.")
    created_by: str = Field(description="Who made it.")
    sent_at: datetime | None = Field(description="When it went out (a letter: when marked sent).")
    sent_by: str | None = Field(description="Who sent it (a letter: who marked it sent).")
    acknowledged_at: datetime | None = Field(description="When its recipient acknowledged it.")
    acknowledged_by: str | None = Field(description="The name the recipient gave.")
    acknowledged_via: str | None = Field(description="link (the message's page) or api (a partner's system).")
    ack_due_at: datetime | None = Field(description="When its acknowledgement is due; after it, the task comes back.")

    @classmethod
    def of(cls, message: Communication) -> Message:
        return cls(
            id=f"M{message.id}",
            task_id=f"T{message.task_id}",
            **{name: getattr(message, name) for name in cls.model_fields if name not in ("id", "task_id")},
        )


_TASK_ID = "The task's id, e.g. `T7`."
_MESSAGE_ID = "The message's id (`M3`) or its reference (`WNB-T12-1`)."


# Included before wnb.api.worklist's router, whose `/tasks/{task_id}/{action}` would take `communications`.
@router.post(
    "/tasks/{task_id}/communications",
    status_code=201,
    summary="Send an information-sharing task's message to the recipient in the child's context",
)
def send(
    task_id: Annotated[str, Path(description=_TASK_ID)], request: Request, principal: Sender, body: SendBody
) -> Message:
    """By one who may act on the task. E-mail and FHIR are queued in the outbox and the task becomes
    `awaiting-acknowledgement`; a letter is prepared (`awaiting-send`): print it from the pages, then mark it sent."""
    service: Service = request.app.state.service
    return Message.of(service.send_communication(task_id, body.channel, principal))


@router.get("/communications/{communication_id}", summary="A message sent from a task (an audited read)")
def read(
    communication_id: Annotated[str, Path(description=_MESSAGE_ID)], request: Request, principal: Reader
) -> Message:
    service: Service = request.app.state.service
    return Message.of(service.read_communication(communication_id, principal, "communication-api"))


@router.post("/communications/{communication_id}/sent", summary="Mark a printed letter sent (posted)")
def letter_sent(
    communication_id: Annotated[str, Path(description=_MESSAGE_ID)], request: Request, principal: Sender
) -> Message:
    """The task then awaits the recipient's acknowledgement."""
    service: Service = request.app.state.service
    return Message.of(service.mark_letter_sent(communication_id, principal))


class AckBody(BaseModel):
    """Who at the recipient received the message."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="The name of the person who received it.")


@router.post(
    "/communications/{communication_id}/ack",
    summary="Acknowledge a message sent to this key's recipient (a partner's system)",
)
def acknowledge(
    communication_id: Annotated[str, Path(description=_MESSAGE_ID)],
    request: Request,
    principal: Acknowledger,
    body: AckBody,
) -> Message:
    """By a client key bound to the message's recipient (`wnb keys bind NAME --recipient ODS`): records who and
    when, and completes the task. A message acknowledged already is refused (409) and nothing changes."""
    service: Service = request.app.state.service
    return Message.of(service.acknowledge_by_key(communication_id, body.name, principal))
