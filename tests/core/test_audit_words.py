"""An audit record's payload in words (wnb/core/audit_words.py), as the audit page shows it."""

from __future__ import annotations

from wnb.core.audit_words import record_words

TITLES = {"notify-social-worker": "Tell the child's social worker", "repeat-wnb": "Repeatedly not brought"}


def title(code: str) -> str:
    return TITLES.get(code, code)


def rule_title(rule_id: str) -> str:
    return {"WNB-01": "A child on a plan was not brought"}.get(rule_id, "another rule")


def test_a_task_created_reads_as_its_title_owner_due_time_and_rules() -> None:
    payload = {
        "code": "notify-social-worker",
        "due_at": "2026-11-16T17:00:00+00:00",
        "evaluation": 11,
        "owner_role": "safeguarding-nurse",
        "rule_ids": ["WNB-01"],
        "service": "ent",
    }

    said = record_words("task_created", payload, title, rule_title)

    assert said.sentence == "Task asked for: Tell the child's social worker"
    assert dict(said.values) == {
        "Service": "ent",
        "Owner": "safeguarding nurse",
        "Due": "Mon 16 Nov 17:00",
        "Asked for by": "WNB-01 (A child on a plan was not brought)",
    }


def test_a_task_status_change_reads_in_status_words() -> None:
    payload = {"code": "notify-social-worker", "from": "requested", "to": "completed", "note": "rang Ms Smith"}

    said = record_words("task_completed", payload, title, rule_title)

    assert said.sentence == "Task done: Tell the child's social worker"
    assert said.values == (("From", "not yet acknowledged"), ("To", "done"), ("Note", "rang Ms Smith"))


def test_an_evaluation_names_its_appointment_and_rules_never_its_facts() -> None:
    payload = {
        "appointment_id": "A1001",
        "source": "pas",
        "event": "E1",
        "event_id": "pas-1",
        "service": "ent",
        "fired": [],
        "facts": {"age_years": 6},
        "conditions": [{"rule_id": "WNB-01"}],
        "outcome": {"flags": []},
    }

    said = record_words("evaluation", payload, title, rule_title)

    assert said.sentence == "An appointment outcome was judged (appointment A1001 from pas)"
    assert dict(said.values) == {"Service": "ent", "Rules that applied": "none", "Event": "E1"}
    assert "age_years" not in repr(said)


def test_an_unknown_action_and_key_read_as_their_words() -> None:
    said = record_words("api_key_created", {"sources": ["pas", "hl7"], "exact_name": True}, title, rule_title)

    assert said.sentence == "Api key created"
    assert said.values == (("Exact name", "yes"), ("Sources", "pas; hl7"))


def test_a_read_through_the_family_view_says_whose_page_showed_the_person() -> None:
    said = record_words("record_read", {"view": "web-family", "family_of": "9990000018"}, title, rule_title)
    assert said.sentence == "A child's record was read"
    assert said.values == (
        ("Viewed", "the family view of a related child's page"),
        ("In the family view of", "9990000018"),
    )
