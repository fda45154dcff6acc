"""A child's multi-agency chronology built from stored rows, with no database (wnb/core/chronology.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, date, datetime
from types import SimpleNamespace

from wnb.core import chronology
from wnb.core.domain import PersonContext, SafeguardingStatus, StatusKind

MISSED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RAISED = datetime(2026, 3, 2, 12, 5, tzinfo=UTC)
DONE = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
CORRECTED = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)


def outcome(
    appointment: str, attendance: str = "did-not-attend", state: str = "current", **more: object
) -> SimpleNamespace:
    values = {
        "source": "pas",
        "appointment_id": appointment,
        "service": "audiology",
        "appointment_at": MISSED,
        "attendance": attendance,
        "priority": None,
        "outcome": None,
        "state": state,
    }
    return SimpleNamespace(**{**values, **more})


def flag(id: int, level: str = "red", status: str = "active", **more: object) -> SimpleNamespace:
    values = {
        "id": id,
        "code": "safeguarding-plan-wnb",
        "level": level,
        "status": status,
        "raised_at": RAISED,
        "status_reason": None,
        "changed_at": None,
        "changed_by": None,
    }
    return SimpleNamespace(**{**values, **more})


TASK = SimpleNamespace(id=7, service="audiology", code="notify-social-worker")


def change(action: str, at: datetime, note: str | None = None, actor: str = "engine") -> SimpleNamespace:
    return SimpleNamespace(
        task_id=7, at=at, actor=actor, action=action, owner_role="safeguarding-nurse", due_at=DONE, note=note
    )


def build(**parts: object) -> list[chronology.Entry]:
    given = {
        "appointments": [],
        "flags": [],
        "tasks": [],
        "history": [],
        "context": None,
        "flags_of_appointment": {},
        "appointments_of_task": {},
        **parts,
    }
    return chronology.build(**given)  # type: ignore[arg-type]


def test_every_outcome_flag_and_action_is_a_row_in_time_order_with_the_template_s_columns() -> None:
    entries = build(
        appointments=[outcome("A1")],
        flags=[flag(1)],
        tasks=[TASK],
        history=[change("completed", DONE, "spoke to the social worker", "user:nurse.jo"), change("created", RAISED)],
        flags_of_appointment={("pas", "A1"): [1]},
        appointments_of_task={7: [("pas", "A1")]},
    )
    assert [entry.event.split(":")[0] for entry in entries] == [
        "not brought (did not attend); appointment A1 from pas",
        "red flag raised",
        "task opened",
        "task done",
    ]
    done = entries[-1]
    assert (done.action, done.by, done.significance) == ("spoke to the social worker", "user:nurse.jo", "red")
    assert chronology.COLUMNS == ("date", "agency or service", "event", "significance", "action taken", "by whom")
    assert done.cells()[0] == "2026-03-03 09:30"  # UK local time (GMT in March)


def test_significance_is_the_level_of_the_flags_an_appointment_raised_else_routine() -> None:
    entries = build(
        appointments=[outcome("A1"), outcome("A2", attendance="attended")],
        flags=[flag(1, level="amber"), flag(2, level="red", code="x")],
        flags_of_appointment={("pas", "A1"): [1, 2]},
    )
    by_appointment = {
        entry.event.split("appointment ")[1].split(" ")[0]: entry.significance
        for entry in entries
        if "appointment" in entry.event
    }
    assert by_appointment == {"A1": "red", "A2": "routine"}


def test_a_correction_and_a_withdrawn_flag_are_rows_of_their_own() -> None:
    entries = build(
        appointments=[
            outcome("A1", state="superseded"),
            outcome("A1", attendance="entered-in-error", appointment_at=CORRECTED),
        ],
        flags=[
            flag(
                1,
                status="entered-in-error",
                changed_at=CORRECTED,
                changed_by="engine",
                status_reason="the outcome was entered in error",
            )
        ],
    )
    events = [entry.event for entry in entries]
    assert "replaced by a later outcome" in events[0]
    assert any(event.startswith("outcome entered in error (correction)") for event in events)
    withdrawn = next(entry for entry in entries if "withdrawn" in entry.event)
    assert withdrawn.action == "the outcome was entered in error" and withdrawn.at == CORRECTED


def test_safeguarding_statuses_are_rows_on_their_start_and_end_dates() -> None:
    plan = SafeguardingStatus(kind=StatusKind("child-protection-plan"), start=date(2025, 6, 1), end=date(2026, 1, 5))
    context = PersonContext(nhs_number="9990000018", statuses=(plan,))
    entries = build(context=context)
    assert [(entry.cells()[0], entry.event) for entry in entries] == [
        ("2025-06-01 00:00", "child protection plan started"),
        ("2026-01-05 00:00", "child protection plan ended"),
    ]


def test_the_csv_keeps_a_cell_that_would_start_a_formula_as_text() -> None:
    entries = build(tasks=[TASK], history=[change("completed", DONE, '=HYPERLINK("http://x.example")')])
    lines = chronology.as_csv(entries).splitlines()
    assert lines[0] == "date,agency or service,event,significance,action taken,by whom"
    assert "'=HYPERLINK" in lines[1]


def test_the_printable_page_escapes_its_cells_and_its_policy_allows_only_its_own_style() -> None:
    entries = build(tasks=[TASK], history=[change("completed", DONE, "<script>alert(1)</script>")])
    page = chronology.as_html("9990000018", entries, DONE)
    assert "<script>" not in page and "&lt;script&gt;" in page
    (style,) = re.findall(r"<style>(.*?)</style>", page)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in chronology.PRINT_POLICY
