"""`wnb explain ID`: for a flag or task, the events, facts and rule conditions that produced it, as data
(`--json`) and as sentences (wnb.core.sentences) with each rule's title."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from wnb.core.errors import NotFound
from wnb.core.nhs import spaced_nhs_number
from wnb.core.refs import parse_ref
from wnb.core.ruleset import Ruleset
from wnb.core.sentences import rule_reasons, rule_sentence, rule_title, service_words, what_happened
from wnb.core.wording import flag_status, local, plain_code, task_status
from wnb.store import repo
from wnb.store.audit import records_for


def _fact_words(name: str, value: Any) -> str:
    return f"{name.replace('_', ' ')} = {str(value).lower() if isinstance(value, bool) else value}"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def explanation(connection: Connection, ref: str) -> dict[str, Any]:
    """What produced flag `F…` or task `T…`, as data (`wnb explain --json`): the item, each appointment behind it
    with the evaluation that asked for it (the item's rules' conditions, the facts), and a task's history.
    Times are UTC, ISO 8601."""
    kind = "flag" if ref.strip().upper().startswith("F") else "task"
    item_id = parse_ref(ref, "F" if kind == "flag" else "T")
    row = repo.flag_by_id(connection, item_id) if kind == "flag" else repo.task_by_id(connection, item_id)
    if row is None:
        raise NotFound(f"no {kind} {ref}; ids look like F12 (flag) or T34 (task)")
    item: dict[str, Any] = {"id": f"{kind[0].upper()}{row.id}", "kind": kind, "nhs_number": row.nhs_number}
    if kind == "flag":
        item |= {"code": row.code, "level": row.level, "status": row.status, "raised_at": _iso(row.raised_at)}
        item |= {"status_reason": row.status_reason, "changed_by": row.changed_by, "changed_at": _iso(row.changed_at)}
    else:
        item |= {"code": row.code, "service": row.service, "status": row.status, "due_at": _iso(row.due_at)}
        item |= {key: getattr(row, key) for key in ("owner_role", "first_owner_role", "escalation_level")}
    item["rule_ids"] = list(row.rule_ids)
    links = repo.all_links(connection, kind, item_id)
    evaluations = {record["seq"]: record for record in records_for(connection, [link.audit_seq for link in links])}
    item["because"] = [_because(connection, link, evaluations.get(link.audit_seq), row.rule_ids) for link in links]
    if kind == "task":
        item["history"] = [
            {
                "at": _iso(change.at),
                "action": change.action,
                "actor": change.actor,
                "status": change.status,
                "owner_role": change.owner_role,
                "due_at": _iso(change.due_at),
                "note": change.note,
            }
            for change in repo.task_history_of(connection, item_id)
        ]
    return item


def _because(connection: Connection, link: Any, record: dict[str, Any] | None, rule_ids: Any) -> dict[str, Any]:
    """One appointment behind an item: its event, and the evaluation of it that asked for the item (if kept)."""
    event = repo.event_by_pk(connection, link.event_pk)
    assert event is not None
    because: dict[str, Any] = {
        "appointment_id": link.appointment_id,
        "source": link.source,
        "active": link.active,
        "event": {
            "source": event.source,
            "event_id": event.event_id,
            "service": event.service,
            "appointment_at": _iso(event.appointment_at),
            "attendance": event.attendance,
            "outcome": event.outcome,
            "priority": event.priority,
            "recorded_at": _iso(event.recorded_at),
        },
        "evaluation": None,
    }
    if record is not None:
        payload = record["payload"]
        facts = payload.get("facts") or {}
        because["evaluation"] = {
            "seq": record["seq"],
            "ruleset_version": str(record["ruleset_version"]),
            "follow_up_deadline": payload.get("follow_up_deadline"),
            "fired": payload.get("fired", []),
            "rules": [rule for rule in payload.get("conditions", []) if rule["rule_id"] in rule_ids],
            "facts": {name: value for name, value in facts.items() if not name.startswith("trigger_")},
        }
    return because


def explain_item(connection: Connection, ref: str, ruleset: Ruleset) -> list[str]:
    """Lines of plain text explaining flag `F…` or task `T…`, in the words of `ruleset` (the one in force)."""
    return explanation_lines(explanation(connection, ref), ruleset)


def explanation_lines(item: dict[str, Any], ruleset: Ruleset) -> list[str]:
    """An explanation (see `explanation`) as sentences, for a terminal or a page: the item by its title, each
    appointment behind it and, for each rule that asked for it, the rule's title and the conditions that held in
    words; then, for whoever checks the rules, each condition as written and the facts."""
    lines: list[str] = []
    number = spaced_nhs_number(item["nhs_number"])
    rules = ", ".join(item["rule_ids"])
    if item["kind"] == "flag":
        lines.append(f"Flag {item['id']}: {ruleset.title(item['code'])} ({item['level']}), NHS number {number}.")
        lines.append(f"  It is {flag_status(item['status'])}; raised {local(item['raised_at'])} by {rules}.")
        if item["status_reason"]:
            changed = f"{item['changed_by']}, {local(item['changed_at'])}"
            lines.append(f"  {flag_status(item['status']).capitalize()} because: {item['status_reason']} ({changed})")
    else:
        escalated = (
            f", escalated {item['escalation_level']} level{'s' if item['escalation_level'] != 1 else ''} from "
            f"{plain_code(item['first_owner_role'])}"
            if item["escalation_level"]
            else ""
        )
        lines.append(
            f"Task {item['id']}: {ruleset.title(item['code'])}, in {service_words(item['service'])}, "
            f"NHS number {number}."
        )
        lines.append(
            f"  It is {task_status(item['status'])}, owned by the {plain_code(item['owner_role'])}{escalated}, due "
            f"{local(item['due_at'])}; asked for by {rules}."
        )
    for because in item["because"]:
        event = because["event"]
        state = " It no longer supports this: the appointment was corrected." if not because["active"] else ""
        lines.append("")
        lines.append(
            f"Because of appointment {because['appointment_id']} from {because['source']} (event "
            f"{event['source']}/{event['event_id']}, recorded {local(event['recorded_at'])}):{state}"
        )
        evaluation = because["evaluation"]
        facts = evaluation["facts"] if evaluation is not None else {}
        happened = what_happened(event, facts, item["nhs_number"])
        if evaluation is None:
            lines.append(f"  {happened}.")
            continue
        if evaluation["follow_up_deadline"] is not None:
            happened += f"; judged at its follow-up deadline, {local(evaluation['follow_up_deadline'])}"
        for rule in evaluation["rules"]:
            reasons = rule_reasons(ruleset, rule["rule_id"], rule["conditions"], str(event["service"]))
            lines.append(f"  {rule['rule_id']}, “{rule_title(ruleset, rule['rule_id'])}”:")
            lines.append(f"    {rule_sentence(happened, reasons)}")
        lines.append(
            f"  As checked (evaluation #{evaluation['seq']}, ruleset {evaluation['ruleset_version'][:12]}, which "
            f"applied {', '.join(evaluation['fired']) or 'no rule'}):"
        )
        for rule in evaluation["rules"]:
            for condition in rule["conditions"]:
                mark = "yes" if condition["held"] else "no "
                actual = "unknown" if condition["actual"] is None else str(condition["actual"]).lower()
                lines.append(f"    {rule['rule_id']} [{mark}] {condition['test']}  (was {actual})")
        if facts:
            lines.append("  Facts: " + "; ".join(_fact_words(name, value) for name, value in facts.items()))
    if item["kind"] == "task":
        lines.append("")
        lines.append("History:")
        for change in item["history"]:
            note = f" — {change['note']}" if change["note"] else ""
            lines.append(
                f"  {local(change['at'])} {plain_code(change['action'])} by {change['actor']}: "
                f"{task_status(change['status'])}, {plain_code(change['owner_role'])}, due {local(change['due_at'])}"
                f"{note}"
            )
    return lines
