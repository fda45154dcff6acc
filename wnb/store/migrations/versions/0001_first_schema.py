"""The schema as of the first release: every table, index and unique constraint of wnb.store.tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:37:11.259602
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", AutoString(), nullable=False),
        sa.Column("key_hash", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("role", AutoString(), nullable=False),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("actor", AutoString(), nullable=False),
        sa.Column("action", AutoString(), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.Column("ruleset_version", AutoString(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", AutoString(), nullable=False),
        sa.Column("hash", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_action"), ["action"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("event_id", AutoString(), nullable=False),
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("service", AutoString(), nullable=False),
        sa.Column("appointment_id", AutoString(), nullable=False),
        sa.Column("appointment_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("attendance", AutoString(), nullable=False),
        sa.Column("priority", AutoString(), nullable=True),
        sa.Column("outcome", AutoString(), nullable=True),
        sa.Column("first_appointment", sa.Boolean(), nullable=True),
        sa.Column("recorded_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("recorded_at_given", sa.Boolean(), nullable=False),
        sa.Column("received_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("state", AutoString(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "event_id", name="uq_event_source_event_id"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_appointment", ["source", "appointment_id", "state"], unique=False)
        batch_op.create_index("ix_event_person", ["nhs_number", "state"], unique=False)

    op.create_table(
        "flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("code", AutoString(), nullable=False),
        sa.Column("level", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("rule_ids", sa.JSON(), nullable=False),
        sa.Column("raised_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("ruleset_version", AutoString(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("changed_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.Column("changed_by", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_nhs_number"), ["nhs_number"], unique=False)
        batch_op.create_index(
            "uq_flag_active",
            ["nhs_number", "code"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "follow_up",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("appointment_id", AutoString(), nullable=False),
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("deadline_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("judged_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "appointment_id", name="uq_follow_up_appointment"),
    )
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.create_index("ix_follow_up_due", ["status", "deadline_at"], unique=False)

    op.create_table(
        "idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", AutoString(), nullable=False),
        sa.Column("key", AutoString(), nullable=False),
        sa.Column("request_hash", AutoString(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client", "key", name="uq_idempotency_client_key"),
    )
    op.create_table(
        "link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("appointment_id", AutoString(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("linked_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("link", schema=None) as batch_op:
        batch_op.create_index("ix_link_appointment", ["source", "appointment_id"], unique=False)
        batch_op.create_index("ix_link_item", ["kind", "item_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", AutoString(), nullable=False),
        sa.Column("recipient", AutoString(), nullable=False),
        sa.Column("subject", AutoString(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("sent_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "person_context",
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nhs_number"),
    )
    op.create_table(
        "reject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("origin", AutoString(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("source", AutoString(), nullable=True),
        sa.Column("event_id", AutoString(), nullable=True),
        sa.Column("field", AutoString(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("handled_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.Column("handled_by", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("service", AutoString(), nullable=False),
        sa.Column("code", AutoString(), nullable=False),
        sa.Column("owner_role", AutoString(), nullable=False),
        sa.Column("first_owner_role", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("due_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("rule_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("ruleset_version", AutoString(), nullable=False),
        sa.Column("updated_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index("ix_task_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_nhs_number"), ["nhs_number"], unique=False)
        batch_op.create_index(
            "uq_task_open",
            ["nhs_number", "service", "code"],
            unique=True,
            sqlite_where=sa.text("status IN ('requested', 'accepted')"),
            postgresql_where=sa.text("status IN ('requested', 'accepted')"),
        )

    op.create_table(
        "task_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("actor", AutoString(), nullable=False),
        sa.Column("action", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("owner_role", AutoString(), nullable=False),
        sa.Column("due_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_history_task_id"), ["task_id"], unique=False)

    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("role", AutoString(), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("disabled_at", wnb.store.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("user_account")
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_history_task_id"))

    op.drop_table("task_history")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_task_open",
            sqlite_where=sa.text("status IN ('requested', 'accepted')"),
            postgresql_where=sa.text("status IN ('requested', 'accepted')"),
        )
        batch_op.drop_index(batch_op.f("ix_task_nhs_number"))
        batch_op.drop_index("ix_task_due")

    op.drop_table("task")
    op.drop_table("reject")
    op.drop_table("person_context")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("link", schema=None) as batch_op:
        batch_op.drop_index("ix_link_item")
        batch_op.drop_index("ix_link_appointment")

    op.drop_table("link")
    op.drop_table("idempotency")
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.drop_index("ix_follow_up_due")

    op.drop_table("follow_up")
    with op.batch_alter_table("flag", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_flag_active", sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'")
        )
        batch_op.drop_index(batch_op.f("ix_flag_nhs_number"))

    op.drop_table("flag")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_person")
        batch_op.drop_index("ix_event_appointment")

    op.drop_table("event")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_action"))

    op.drop_table("audit")
    op.drop_table("api_key")
