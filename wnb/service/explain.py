"""`wnb explain ID`: for a flag or task, the events, facts and rule conditions that produced it, in words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from wnb.core.errors import NotFound
from wnb.core.refs import parse_ref
from wnb.core.wording import local, plain_code
from wnb.store import repo
from wnb.store.audit import records_for


def _fact_words(name: str, value: Any) -> str:
    return f"{name.replace('_', ' ')} = {str(value).lower() if isinstance(value, bool) else value}"


def explain_item(connection: Connection, ref: str) -> list[str]:
    """Lines of plain text explaining flag `F…` or task `T…`."""
    kind = "flag" if ref.strip().upper().startswith("F") else "task"
    item_id = parse_ref(ref, "F" if kind == "flag" else "T")
    row = repo.flag_by_id(connection, item_id) if kind == "flag" else repo.task_by_id(connection, item_id)
    if row is None:
        raise NotFound(f"no {kind} {ref}; ids look like F12 (flag) or T34 (task)")
    lines: list[str] = []
    if kind == "flag":
        lines.append(f"Flag F{row.id}: {plain_code(row.code)} ({row.level}) for NHS number {row.nhs_number}")
        lines.append(f"  status {row.status}, raised {local(row.raised_at)} by rules {', '.join(row.rule_ids)}")
        if row.status_reason:
            lines.append(f"  {row.status} because: {row.status_reason} ({row.changed_by}, {local(row.changed_at)})")
    else:
        lines.append(f"Task T{row.id}: {plain_code(row.code)} in {row.service} for NHS number {row.nhs_number}")
        lines.append(
            f"  owner {row.owner_role} (first {row.first_owner_role}, escalation level {row.escalation_level}), "
            f"status {row.status}, due {local(row.due_at)}; asked for by rules {', '.join(row.rule_ids)}"
        )
    links = repo.all_links(connection, kind, item_id)
    evaluations = {record["seq"]: record for record in records_for(connection, [link.audit_seq for link in links])}
    for link in links:
        event = repo.event_by_pk(connection, link.event_pk)
        assert event is not None
        state = "" if link.active else " (no longer supports it: the appointment was corrected)"
        lines.append("")
        lines.append(f"Because of appointment {link.appointment_id} from {link.source}{state}:")
        lines.append(
            f"  {event.service}, {local(event.appointment_at)}: {event.attendance}"
            + (f", outcome {event.outcome}" if event.outcome else "")
            + (f", priority {event.priority}" if event.priority else "")
            + f"; recorded {local(event.recorded_at)} (event {event.source}/{event.event_id})"
        )
        record = evaluations.get(link.audit_seq)
        if record is None:
            continue
        payload = record["payload"]
        if "follow_up_deadline" in payload:
            lines.append(f"  judged at its follow-up deadline {local(payload['follow_up_deadline'])}")
        lines.append(
            f"  evaluation #{record['seq']} under ruleset {str(record['ruleset_version'])[:12]} "
            f"fired {', '.join(payload.get('fired', [])) or 'nothing'}"
        )
        for rule in payload.get("conditions", []):
            if rule["rule_id"] not in row.rule_ids:
                continue
            lines.append(f"  {rule['rule_id']} fired because:")
            for condition in rule["conditions"]:
                mark = "yes" if condition["held"] else "no "
                actual = "unknown" if condition["actual"] is None else str(condition["actual"]).lower()
                lines.append(f"    [{mark}] {condition['test']}  (was {actual})")
        facts = payload.get("facts") or {}
        if facts:
            shown = [name for name in facts if not name.startswith("trigger_")]
            lines.append("  facts: " + "; ".join(_fact_words(name, facts[name]) for name in shown))
    if kind == "task":
        lines.append("")
        lines.append("History:")
        for change in repo.task_history_of(connection, item_id):
            note = f" — {change.note}" if change.note else ""
            lines.append(
                f"  {local(change.at)} {change.action} by {change.actor}: {change.status}, {change.owner_role}, "
                f"due {local(change.due_at)}{note}"
            )
    return lines
