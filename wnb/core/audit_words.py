"""An audit record's payload as people read it on the audit page: one short sentence, then labelled values.

The payload is kept as the data it is (`wnb audit export` and the API give it whole); this only words it:
codes by their titles, statuses and times in words, rule ids with their titles. The facts and conditions of an
evaluation are left to the explain page, never shown here. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wnb.core.wording import flag_status, local_short, plain_code, task_status

Titles = Callable[[str], str]  # a flag or task code → its words (Ruleset.title)

# What happened, by action; any other action reads as its words ('user_created' → 'User created').
ACTION_WORDS = {
    "evaluation": "An appointment outcome was judged",
    "follow_up_judged": "A missed appointment was judged at its follow-up deadline",
    "flag_raised": "Flag raised",
    "flag_repeated": "Flag already active, the appointment linked to it",
    "flag_resolved": "Flag resolved",
    "flag_entered_in_error": "Flag withdrawn",
    "task_created": "Task asked for",
    "task_repeated": "Task already open, the appointment linked to it",
    "task_acknowledged": "Task acknowledged",
    "task_completed": "Task done",
    "task_cancelled": "Task cancelled",
    "task_escalated": "Task escalated",
    "appointment_corrected": "An appointment's outcome was corrected",
    "event_rejected": "An event was rejected",
    "reject_repeated": "A rejected event was sent again",
    "reject_handled": "A rejected event was handled",
    "record_read": "A child's record was read",
    "context_imported": "Safeguarding context imported",
    "signed_in": "Signed in",
    "signed_out": "Signed out",
}

# Where a person read a child's record (`record_read` views).
VIEW_WORDS = {
    "web-child-page": "the child's page",
    "web-explain": "an explanation of a flag or task",
    "timeline": "the child's timeline (API)",
    "web-family": "the family view of a related child's page",
    "family": "a child's family view (API)",
}

# The payload keys shown, in this order, with their labels; any other plain value follows under its words.
LABELS = {
    "from": "From",
    "to": "To",
    "from_role": "From",
    "to_role": "To",
    "level": "Level",
    "service": "Service",
    "owner_role": "Owner",
    "due_at": "Due",
    "old_due_at": "Was due",
    "fired": "Rules that applied",
    "rule_ids": "Asked for by",
    "reason": "Reason",
    "note": "Note",
    "view": "Viewed",
    "family_of": "In the family view of",
    "field": "Field",
    "withdrawn": "Withdrawn",
}
# Never shown here: the facts and conditions (the explain page shows them), ids said in the sentence, bulky data.
HIDDEN = frozenset({"facts", "conditions", "outcome", "code", "evaluation", "appointment_id", "source", "event_id"})
_LONGEST = 300


@dataclass(frozen=True)
class RecordWords:
    """What a record says: one sentence, and labelled values (a definition list on the page)."""

    sentence: str
    values: tuple[tuple[str, str], ...]


def record_words(action: str, payload: Mapping[str, Any], titles: Titles, rule_titles: Titles) -> RecordWords:
    """The audit record of `action` with `payload` in words; `titles` names codes, `rule_titles` rule ids."""
    sentence = ACTION_WORDS.get(action) or plain_code(action.replace("_", "-")).capitalize()
    code = payload.get("code")
    if isinstance(code, str):
        sentence += f": {titles(code)}"
    if isinstance(payload.get("appointment_id"), str):
        sentence += f" (appointment {payload['appointment_id']}" + (
            f" from {payload['source']})" if isinstance(payload.get("source"), str) else ")"
        )
    values: list[tuple[str, str]] = []
    keys = [key for key in LABELS if key in payload] + sorted(key for key in payload if key not in LABELS)
    for key in keys:
        if key in HIDDEN:
            continue
        shown = _value(action, key, payload[key], rule_titles)
        if shown:
            label = LABELS.get(key) or plain_code(key.replace("_", "-")).capitalize()
            values.append((label, shown[:_LONGEST]))
    if action in ("flag_repeated", "task_repeated"):
        values = [(label, shown) for label, shown in values if label != "Reason"]  # the sentence says it
    return RecordWords(sentence, tuple(values))


def _value(action: str, key: str, value: Any, rule_titles: Titles) -> str:
    """One payload value in words; '' for one not worth a line (empty, or data too big for a line)."""
    if key in ("fired", "rule_ids") and isinstance(value, list):
        return "; ".join(f"{rule_id} ({rule_titles(rule_id)})" for rule_id in value) or "none"
    if value is None or value == "" or value == [] or isinstance(value, dict):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    if key in ("from", "to") and isinstance(value, str):
        if action.startswith("task_"):
            return task_status(value)
        if action.startswith("flag_"):
            return flag_status(value)
        return plain_code(value)
    if key.endswith("_at") and isinstance(value, str):
        try:
            return local_short(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if key in ("from_role", "to_role", "owner_role") and isinstance(value, str):
        return plain_code(value)
    if key == "view" and isinstance(value, str):
        return VIEW_WORDS.get(value, plain_code(value))
    return str(value)
