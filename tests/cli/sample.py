"""The command-line tests' sample: children, their context and two feeds (NDJSON and CSV), loaded into one database
through the command line (`load`), with the people whom `--by` names. Synthetic people only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cli.running import Run, run_in
from wnb.database import open_database
from wnb.store.accounts import create_user

# `--by` names an enabled account; its role must allow the action (wnb.core.policy).
PEOPLE = {"nurse.one": "safeguarding-lead", "clerk.two": "booking-team", "dr.three": "clinician"}
CPP_CHILD = "9990000018"  # on a child protection plan
COMPLEX_CHILD = "9990000034"  # complex health needs
CSV_CHILD = "9990000042"
ADULT = "9990000050"

FLAG_KEYS = ["id", "nhs_number", "code", "level", "status", "rule_ids", "raised_at", "event_ids"]
TASK_KEYS = [
    "id",
    "nhs_number",
    "service",
    "code",
    "owner_role",
    "status",
    "due_at",
    "escalation_level",
    "assignee",
    "rule_ids",
    "event_ids",
]

CONTEXT = [
    {
        "nhs_number": CPP_CHILD,
        "date_of_birth": "2019-05-01",
        "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}],
        "complex_health_needs": False,
        "care_and_support_needs": False,
        "contacts": {"social_worker": "Duty team"},
    },
    {
        "nhs_number": COMPLEX_CHILD,
        "date_of_birth": "2014-02-10",
        "statuses": [],
        "complex_health_needs": True,
    },
    {"nhs_number": ADULT, "date_of_birth": "1990-01-01"},
    {"nhs_number": "9990000019", "date_of_birth": "2015-01-01"},  # invalid NHS number: rejected
]

NDJSON_LINES: list[dict[str, Any] | str] = [
    {
        "source": "pas",
        "event_id": "pas-1",
        "nhs_number": CPP_CHILD,
        "service": "community-paediatrics",
        "appointment_id": "A1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T12:05:00+00:00",
    },
    {
        "source": "pas",
        "event_id": "pas-2",
        "nhs_number": COMPLEX_CHILD,
        "service": "paediatric-diabetes",
        "appointment_id": "A2",
        "appointment_at": "2026-03-04T14:00:00+00:00",
        "attendance": "3",
        "priority": "urgent",
        "recorded_at": "2026-03-04T16:00:00+00:00",
    },
    {
        "source": "pas",
        "event_id": "pas-3",
        "nhs_number": "9990000019",
        "service": "audiology",
        "appointment_id": "A3",
        "appointment_at": "2026-03-03T09:30:00+00:00",
        "attendance": "3",
    },
    {
        "source": "pas",
        "event_id": "pas-2",
        "nhs_number": COMPLEX_CHILD,
        "service": "paediatric-diabetes",
        "appointment_id": "A2",
        "appointment_at": "2026-03-04T14:00:00+00:00",
        "attendance": "attended",
    },
    {
        "source": "pas",
        "event_id": "pas-4",
        "nhs_number": ADULT,
        "service": "audiology",
        "appointment_id": "A4",
        "appointment_at": "2026-03-05T09:30:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-05T10:00:00+00:00",
    },
    '{"source": "pas", "event_id": "pas-5", "nhs_number": "9990000018"',
]
CSV_TEXT = (
    "source,event_id,nhs_number,date_of_birth,service,appointment_id,appointment_at,attendance,priority,"
    "outcome,first_appointment,recorded_at\n"
    "community-ehr,c-1,999 000 0042,2012-08-30,orthoptics,S1,2026-03-05T11:00:00+00:00,7,,,,"
    "2026-03-05T11:40:00+00:00\n"
    "community-ehr,c-2,9990000042,2012-08-30,orthoptics\n"
)


@dataclass
class Loaded:
    folder: Path
    context: Run
    ingest_ndjson: Run
    ingest_csv: Run
    flags: list[dict[str, Any]]
    tasks: list[dict[str, Any]]

    def run(self, *args: str, columns: int | None = None) -> Run:
        """A read-only command on the loaded database."""
        return run_in(self.folder, *args, columns=columns)

    def flag(self, code: str) -> dict[str, Any]:
        return next(flag for flag in self.flags if flag["code"] == code)

    def task(self, code: str, nhs_number: str) -> dict[str, Any]:
        return next(task for task in self.tasks if task["code"] == code and task["nhs_number"] == nhs_number)


def load(folder: Path) -> Loaded:
    """The sample context and feeds (NDJSON and CSV) loaded into `folder`'s database through the command line, with
    the people whom `--by` names."""
    (folder / "context.ndjson").write_text("".join(json.dumps(item) + "\n" for item in CONTEXT), encoding="utf-8")
    (folder / "feed.ndjson").write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in NDJSON_LINES),
        encoding="utf-8",
    )
    (folder / "feed.csv").write_text(CSV_TEXT, encoding="utf-8")
    context = run_in(folder, "context", "import", "context.ndjson")
    ingest_ndjson = run_in(folder, "ingest", "feed.ndjson")
    ingest_csv = run_in(folder, "ingest", str(folder / "feed.csv"))  # an absolute path, as an inbox poller gives
    people = open_database(f"sqlite:///{folder / 'wnb.db'}")  # the people whom `--by` names
    for name, role in PEOPLE.items():
        create_user(people, name, role, f"{name} passphrase long enough")
    people.dispose()
    flags, tasks = run_in(folder, "flags", "--json"), run_in(folder, "tasks", "--json")
    return Loaded(folder, context, ingest_ndjson, ingest_csv, flags.json(), tasks.json())
