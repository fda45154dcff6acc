"""SQLModel tables. They stay inside `store/`; the rest of wnb sees domain types and plain dicts.

Over 400 lines on purpose: the whole schema in one module, as Alembic's metadata and the migrations see it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from wnb.core.kinds import OPEN_TASK_CONDITION


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; every datetime must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _utc(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=Column(JSON(), **kwargs))


class EventRow(SQLModel, table=True):
    """Every accepted event, whatever became of it (state: current, superseded, stale)."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_event_source_event_id"),
        Index("ix_event_person", "nhs_number", "state"),
        Index("ix_event_appointment", "source", "appointment_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    event_id: str
    nhs_number: str
    date_of_birth: date | None = None
    service: str
    appointment_id: str
    appointment_at: datetime = _utc(nullable=False)
    attendance: str
    priority: str | None = None
    outcome: str | None = None
    first_appointment: bool | None = None
    recorded_at: datetime = _utc(nullable=False)
    recorded_at_given: bool = True
    received_at: datetime = _utc(nullable=False)
    state: str
    raw: dict[str, Any] = _json(nullable=False)


class PersonContextRow(SQLModel, table=True):
    __tablename__ = "person_context"

    nhs_number: str = Field(primary_key=True)
    document: dict[str, Any] = _json(nullable=False)
    updated_at: datetime = _utc(nullable=False)


class FlagRow(SQLModel, table=True):
    __tablename__ = "flag"
    __table_args__ = (
        # At most one active flag per (person, code): DOMAIN.md §5.2.
        Index(
            "uq_flag_active",
            "nhs_number",
            "code",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    nhs_number: str = Field(index=True)
    code: str
    level: str
    status: str
    rule_ids: list[str] = _json(nullable=False)
    raised_at: datetime = _utc(nullable=False)
    ruleset_version: str
    status_reason: str | None = Field(default=None, sa_column=Column(Text()))
    changed_at: datetime | None = _utc()
    changed_by: str | None = None


class TaskRow(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        # At most one open task per (person, service, code): DOMAIN.md §5.3.
        Index(
            "uq_task_open",
            "nhs_number",
            "service",
            "code",
            unique=True,
            sqlite_where=text(OPEN_TASK_CONDITION),
            postgresql_where=text(OPEN_TASK_CONDITION),
        ),
        Index("ix_task_due", "status", "due_at"),
        Index("ix_task_role", "owner_role", "status", "due_at"),  # the worklist (wnb.store.worklist)
    )

    id: int | None = Field(default=None, primary_key=True)
    nhs_number: str = Field(index=True)
    service: str
    code: str
    owner_role: str
    first_owner_role: str
    status: str
    due_at: datetime = _utc(nullable=False)
    escalation_level: int = 0
    rule_ids: list[str] = _json(nullable=False)
    created_at: datetime = _utc(nullable=False)
    ruleset_version: str
    updated_at: datetime = _utc(nullable=False)
    # The person it is assigned to (issue 16): an account of its owner role; NULL while it is with the role.
    assignee: str | None = Field(default=None, index=True)
    acknowledged_at: datetime | None = _utc()  # the acknowledgement timeout counts from it
    waiting_until: datetime | None = _utc()  # waiting for a reply until then (the start of its day, UK time)
    waiting_reason: str | None = Field(default=None, sa_column=Column(Text()))


class TaskHistoryRow(SQLModel, table=True):
    """Every change of a task: who, when, what and a note (DOMAIN.md §5.5)."""

    __tablename__ = "task_history"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(index=True)
    at: datetime = _utc(nullable=False)
    actor: str
    action: str
    status: str
    owner_role: str
    due_at: datetime = _utc(nullable=False)
    escalation_level: int
    note: str | None = Field(default=None, sa_column=Column(Text()))
    assignee: str | None = None  # whom the task was with after the change


class LinkRow(SQLModel, table=True):
    """Which appointments (and through which event and evaluation) raised or repeated a flag or task."""

    __tablename__ = "link"
    __table_args__ = (
        Index("ix_link_item", "kind", "item_id"),
        Index("ix_link_appointment", "source", "appointment_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # flag | task
    item_id: int
    source: str
    appointment_id: str
    event_pk: int
    audit_seq: int
    active: bool = True
    linked_at: datetime = _utc(nullable=False)


class FollowUpRow(SQLModel, table=True):
    """A missed appointment waiting for its WNB-14 follow-up deadline."""

    __tablename__ = "follow_up"
    __table_args__ = (
        UniqueConstraint("source", "appointment_id", name="uq_follow_up_appointment"),
        Index("ix_follow_up_due", "status", "deadline_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    appointment_id: str
    nhs_number: str
    deadline_at: datetime = _utc(nullable=False)
    status: str  # pending | judged | void
    judged_at: datetime | None = _utc()


class RejectRow(SQLModel, table=True):
    """The data-quality queue: a row or message that was refused, with the reason and the raw input.

    One row per distinct refused input: the same row sent again (a client resending a batch after a replica
    died, a file dropped twice) is counted on the row it already has, never queued a second time.
    `kind` says what the item is: `reject` (refused, takes part in nothing) or `stale-outcome` (an event stored
    as stale whose attendance disagrees with the stored one: it stays stored, its id reserved; DOMAIN.md §6).
    """

    __tablename__ = "reject"
    __table_args__ = (UniqueConstraint("fingerprint", name="uq_reject_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str  # SHA-256 of where it came from, its source and its raw text (wnb.store.rejects)
    received_at: datetime = _utc(nullable=False)  # the first time
    last_received_at: datetime = _utc(nullable=False)
    received_count: int = 1
    origin: str  # file name, endpoint or listener
    line: int | None = None
    source: str | None = None
    event_id: str | None = None
    field: str | None = None
    reason: str = Field(sa_column=Column(Text(), nullable=False))
    raw: str = Field(sa_column=Column(Text(), nullable=False))
    # `text`: raw as received; `base64`: the bytes received (U+0000 or not UTF-8), see wnb.core.limits.storable_raw
    raw_encoding: str = Field(default="text", sa_column_kwargs={"server_default": "text"})
    handled_at: datetime | None = _utc()
    handled_by: str | None = None
    kind: str = Field(default="reject", sa_column_kwargs={"server_default": "reject"})  # reject | stale-outcome


class AuditRow(SQLModel, table=True):
    """The append-only, hash-chained audit log (ARCHITECTURE.md §6)."""

    __tablename__ = "audit"

    seq: int = Field(primary_key=True)
    at: datetime = _utc(nullable=False)
    actor: str
    action: str = Field(index=True)
    subject: list[str] = _json(nullable=False)
    ruleset_version: str | None = None
    payload: dict[str, Any] = _json(nullable=False)
    prev_hash: str
    hash: str
    # The audit key that authenticates the record (None: written before wnb had audit keys) and its HMAC.
    key_id: str | None = None
    mac: str | None = None


class AuditHeadRow(SQLModel, table=True):
    """The chain's last sequence number and hash, so removing records from the end is found too."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int
    hash: str
    key_id: str | None = None
    mac: str | None = None


class ApiKeyRow(SQLModel, table=True):
    """A client system's API key: only a short public prefix and the SHA-256 of the whole key are kept."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(unique=True)
    key_hash: str
    name: str = Field(unique=True)
    role: str
    created_at: datetime = _utc(nullable=False)
    revoked_at: datetime | None = _utc()
    # What the key may write (issue 11): event sources (NULL: made before bindings, writes nothing until bound)
    # and whether it writes safeguarding context.
    sources: list[str] | None = _json(nullable=True)
    writes_context: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # A partner's key (issue 18): the ODS code of the recipient whose messages it acknowledges (None: no partner).
    recipient: str | None = None


class UserRow(SQLModel, table=True):
    """A person's account: the password kept only as an argon2 hash."""

    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    role: str
    password_hash: str
    created_at: datetime = _utc(nullable=False)
    disabled_at: datetime | None = _utc()
    email: str | None = None  # where an assignment to them is announced (issue 16); None: only their role's mailbox


class IdempotencyRow(SQLModel, table=True):
    """The first response to a request with an Idempotency-Key, replayed when the same client repeats the key."""

    __tablename__ = "idempotency"
    __table_args__ = (UniqueConstraint("client", "key", name="uq_idempotency_client_key"),)

    id: int | None = Field(default=None, primary_key=True)
    client: str
    key: str
    request_hash: str
    status_code: int
    body: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: datetime = _utc(nullable=False)


class OutboxRow(SQLModel, table=True):
    """A notification to deliver, written in the same transaction as the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str  # one message per change and address, whatever retries or replays happen
    recipient: str
    subject: str
    body: str = Field(sa_column=Column(Text(), nullable=False))
    status: str  # pending | sending | sent | failed | uncertain
    attempts: int = 0
    next_attempt_at: datetime = _utc(nullable=False)
    last_error: str | None = Field(default=None, sa_column=Column(Text()))
    created_at: datetime = _utc(nullable=False)
    sent_at: datetime | None = _utc()
    claimed_at: datetime | None = _utc()  # when a deliverer took it (pending → sending)
    # The admin task opened when the row became `uncertain` or `failed` (set in the same transaction): one
    # task per undelivered message, whatever replicas or retries report it.
    admin_task_id: int | None = None


class WebSessionRow(SQLModel, table=True):
    """A person's session on the pages, kept on the server: the cookie holds a random token, only its SHA-256
    is stored, so ending a session (sign-out, a disabled account, a new password) works on every replica."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user_name", "user_name"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True)
    user_name: str
    created_at: datetime = _utc(nullable=False)
    expires_at: datetime = _utc(nullable=False)


class SignInFailureRow(SQLModel, table=True):
    """Failed sign-ins of one account name from one client address, counted in the database so every replica
    refuses alike; `refused_until` is when the next attempt may be tried (a growing delay, then a lock)."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (
        UniqueConstraint("user_name", "address", name="uq_sign_in_failure_user_address"),
        Index("ix_sign_in_failure_last_failed_at", "last_failed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_name: str
    address: str
    failures: int
    first_failed_at: datetime = _utc(nullable=False)
    last_failed_at: datetime = _utc(nullable=False)
    refused_until: datetime = _utc(nullable=False)
    locked: bool = False  # the lock was reached (and audited once for this run of failures)


class RulesetVersionRow(SQLModel, table=True):
    """A version of the ruleset registry (issue 15): its files, evidence, and who proposed, decided and activated
    it, when and why. Only wnb/store/rulesets.py touches it; its statuses are wnb.core.releases.Status."""

    __tablename__ = "ruleset_version"
    __table_args__ = (Index("ix_ruleset_version_status", "status"),)

    version: str = Field(primary_key=True)  # the content hash of the files (wnb.core.ruleset.content_version)
    files: dict[str, str] = _json(nullable=False)  # file name → UTF-8 text, scenarios/ and hazards.yaml included
    status: str  # proposed | approved | scheduled | active | retired | rejected
    proposed_by: str
    proposed_at: datetime = _utc(nullable=False)
    note: str | None = Field(default=None, sa_column=Column(Text()))
    approved_by: str | None = None
    approved_at: datetime | None = _utc()
    reason: str | None = Field(default=None, sa_column=Column(Text()))  # the approval's or rejection's reason
    rejected_by: str | None = None
    rejected_at: datetime | None = _utc()
    activated_by: str | None = None
    activated_at: datetime | None = _utc()
    active_from: datetime | None = _utc()
    retired_at: datetime | None = _utc()
    compared_against: str | None = None  # the version active when the evidence was made
    evidence: dict[str, Any] = _json(nullable=False)  # check, scenarios, backtest per rule and per role
    rollback: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})  # marked for review


class RecipientRow(SQLModel, table=True):
    """An organisation of the recipient directory (issue 18 part 1), keyed by its ODS code: where a contact
    naming only the code is sent. Replaced whole by a later import of the same code."""

    __tablename__ = "recipient"

    ods_code: str = Field(primary_key=True)
    name: str
    email: str | None = None
    endpoint: str | None = None
    updated_at: datetime = _utc(nullable=False)


class RulesetReportRow(SQLModel, table=True):
    """A safety case report of a ruleset version as made (issue 15): its bytes and their SHA-256. The same version
    and stored evidence give the same bytes, so a report made again is found, not stored twice; a report made
    after a later step (the approval, the activation) is a new row beside the earlier one."""

    __tablename__ = "ruleset_report"

    version: str = Field(primary_key=True)
    sha256: str = Field(primary_key=True)
    html: str = Field(sa_column=Column(Text(), nullable=False))
    made_by: str
    made_at: datetime = _utc(nullable=False)  # when it was first made: never inside the report itself


class RulesetJobRow(SQLModel, table=True):
    """A proposal made on the pages, whose backtest runs in the background (issue 15): its state and progress,
    and the version it stored when done (or why it failed)."""

    __tablename__ = "ruleset_job"

    id: int | None = Field(default=None, primary_key=True)
    state: str  # queued | running | done | failed | interrupted
    stage: str  # what it is doing now, in words
    proposed_by: str
    note: str | None = Field(default=None, sa_column=Column(Text()))
    candidate: str  # the content version of the files
    files: dict[str, str] = _json(nullable=False)
    started_at: datetime = _utc(nullable=False)
    finished_at: datetime | None = _utc()
    version: str | None = None  # the version stored, when done
    error: str | None = Field(default=None, sa_column=Column(Text()))
    owner: str | None = None  # the process running it, `host:pid` (None: made before revision 0016)
    heartbeat_at: datetime | None = _utc()  # the owner's latest sign of life while it runs


class CommunicationRow(SQLModel, table=True):
    """A message sent from an information-sharing task (issue 18) to the recipient named in the person's context:
    by letter (marked sent by a person), secure e-mail or a FHIR Communication. Only wnb/store/communications.py
    touches it; its statuses are wnb.core.sharing.CommunicationStatus."""

    __tablename__ = "communication"
    __table_args__ = (
        UniqueConstraint("reference", name="uq_communication_reference"),
        Index("ix_communication_person", "nhs_number"),
        Index("ix_communication_task", "task_id"),
        Index("ix_communication_due", "status", "ack_due_at"),  # the non-acknowledgement sweep
        Index("ix_communication_outbox", "outbox_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str  # the message's own reference, quoted back by its recipient: WNB-T<task>-<n>
    task_id: int = Field(foreign_key="task.id")
    nhs_number: str
    recipient_role: str  # a wnb.core.contacts.ContactRole value
    recipient_name: str
    recipient_organisation: str | None = None
    recipient_ods: str | None = None
    channel: str  # letter | email | fhir
    address: str | None = None  # the e-mail address or the endpoint (None: a letter)
    content: dict[str, Any] = _json(nullable=False)  # the minimum necessary (wnb.core.sharing.content)
    status: str  # awaiting-send | sent | failed | uncertain | acknowledged | not-acknowledged
    created_at: datetime = _utc(nullable=False)
    created_by: str
    sent_at: datetime | None = _utc()
    sent_by: str | None = None
    outbox_id: int | None = None  # the outbox row carrying it (e-mail and FHIR)
    ack_due_at: datetime | None = _utc()
    acknowledged_at: datetime | None = _utc()
    acknowledged_by: str | None = None  # the name the recipient gave
    acknowledged_via: str | None = None  # link | api
    status_reason: str | None = Field(default=None, sa_column=Column(Text()))
