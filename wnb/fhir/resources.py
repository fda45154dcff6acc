"""FHIR R4 out: flags as Flag, tasks as Task, audit records as AuditEvent, and a Provenance per flag and task.

Each resource is built as a `fhir.resources.R4B` model (so an invalid one fails here, not at the reader)
from the plain rows of the store; nothing here reads the clock or the database. wnb's own codes use `urn:wnb:`
systems; the subject is always the NHS number identifier. A Provenance links a flag or task to the events
(source/event id) whose evaluations raised or repeated it, to those evaluations' AuditEvents, and to the
ruleset version in force (as its policy).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task

from wnb.core.audit_chain import canonical
from wnb.core.kinds import FHIR_TASK_STATUS
from wnb.fhir.appointments import NHS_NUMBER_SYSTEM

FLAG_CODE = "urn:wnb:flag-code"
TASK_CODE = "urn:wnb:task-code"
RULE = "urn:wnb:rule"
ROLE = "urn:wnb:role"
EVENT = "urn:wnb:event"
AUDIT_ACTION = "urn:wnb:audit-action"
AUDIT_RECORD = "urn:wnb:audit-record"
LEVEL_EXTENSION = "urn:wnb:extension:flag-level"
SERVICE_EXTENSION = "urn:wnb:extension:service"
ESCALATION_EXTENSION = "urn:wnb:extension:escalation-level"
MESSAGE_REFERENCE = "urn:wnb:message-reference"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
RECIPIENT_ROLE = "urn:wnb:recipient-role"
_READS = frozenset({"record_read"})
_CREATES = frozenset({"flag_raised", "task_created", "event_rejected", "context_imported"})


def _iso(moment: datetime | None) -> str | None:
    """A FHIR instant in UTC, as the rest of wnb's JSON writes it (`Z`)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _patient(nhs_number: str) -> dict[str, Any]:
    return {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number}, "type": "Patient"}


def _pruned(value: Any) -> Any:
    """The value without None members (FHIR JSON has no nulls)."""
    if isinstance(value, dict):
        return {key: _pruned(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _checked(model: type[Resource], data: dict[str, Any]) -> dict[str, Any]:
    """The resource as JSON, once its R4B model has validated it (invalid: pydantic's ValidationError).

    The model validates; the JSON is the validated input itself, since re-serialising the model would
    cost twice the validation and say the same thing.
    """
    resource: dict[str, Any] = _pruned(data)
    model.model_validate(resource)
    return resource


def flag_resource(row: dict[str, Any]) -> dict[str, Any]:
    """A wnb flag as a FHIR Flag: status, safety category, code, the child's NHS number, period."""
    period = {"start": _iso(row["raised_at"])}
    if row["status"] != "active" and row.get("changed_at") is not None:
        period["end"] = _iso(row["changed_at"])
    return _checked(
        Flag,
        {
            "resourceType": "Flag",
            "id": f"F{row['id']}",
            "extension": [{"url": LEVEL_EXTENSION, "valueCode": row["level"]}],
            "status": row["status"],
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                            "code": "safety",
                            "display": "Safety",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": FLAG_CODE, "code": row["code"]}]
                + [{"system": RULE, "code": rule} for rule in row["rule_ids"]],
                "text": row["code"],
            },
            "subject": _patient(row["nhs_number"]),
            "period": period,
        },
    )


def task_priority(row: dict[str, Any]) -> str:
    """asap once escalated; urgent when due within a day of being asked for; routine otherwise."""
    if row["escalation_level"] > 0:
        return "asap"
    return "urgent" if row["due_at"] - row["created_at"] <= timedelta(hours=24) else "routine"


def task_resource(row: dict[str, Any]) -> dict[str, Any]:
    """A wnb task as a FHIR Task: status, intent, priority, code, owner role, due as restriction.period.end."""
    return _checked(
        Task,
        {
            "resourceType": "Task",
            "id": f"T{row['id']}",
            "extension": [
                {"url": SERVICE_EXTENSION, "valueString": row["service"]},
                {"url": ESCALATION_EXTENSION, "valueInteger": row["escalation_level"]},
            ],
            "status": FHIR_TASK_STATUS.get(row["status"], row["status"]),
            "intent": "order",
            "priority": task_priority(row),
            "code": {"coding": [{"system": TASK_CODE, "code": row["code"]}], "text": row["code"]},
            "for": _patient(row["nhs_number"]),
            "authoredOn": _iso(row["created_at"]),
            "lastModified": _iso(row["updated_at"]),
            "owner": {"identifier": {"system": ROLE, "value": row["owner_role"]}, "display": row["owner_role"]},
            "reasonCode": {"coding": [{"system": RULE, "code": rule} for rule in row["rule_ids"]]},
            "restriction": {"period": {"end": _iso(row["due_at"])}},
        },
    )


def provenance_resource(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """How a flag or task came to be: the events and evaluations linked to it, under which ruleset version."""
    target = f"Flag/F{row['id']}" if kind == "flag" else f"Task/T{row['id']}"
    entities: list[dict[str, Any]] = []
    for link in row["links"]:
        entities.append(
            {
                "role": "source",
                "what": {
                    "identifier": {"system": EVENT, "value": f"{link['source']}/{link['event_id']}"},
                    "display": f"appointment {link['appointment_id']} ({link['source']})",
                },
            }
        )
    for seq in dict.fromkeys(link["audit_seq"] for link in row["links"]):
        entities.append({"role": "derivation", "what": {"reference": f"AuditEvent/A{seq}"}})
    return _checked(
        Provenance,
        {
            "resourceType": "Provenance",
            "id": f"prov-{target.split('/')[1]}",
            "target": [{"reference": target}],
            "recorded": _iso(row["raised_at"] if kind == "flag" else row["created_at"]),
            "policy": [f"urn:wnb:ruleset:{row['ruleset_version']}"],
            "activity": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]
            },
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "assembler",
                            }
                        ]
                    },
                    "who": {"display": f"wnb rules engine, ruleset {row['ruleset_version'][:12]}"},
                }
            ],
            "entity": entities or None,
        },
    )


def _subject_entity(subject: str) -> dict[str, Any]:
    if subject.isdigit() and len(subject) == 10:
        return {
            "what": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": subject}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
        }
    if subject[:1] == "F" and subject[1:].isdigit():
        return {"what": {"reference": f"Flag/{subject}"}}
    if subject[:1] == "T" and subject[1:].isdigit():
        return {"what": {"reference": f"Task/{subject}"}}
    return {"what": {"identifier": {"system": "urn:wnb:id", "value": subject}}}


def _action_code(action: str) -> str:
    if action in _READS:
        return "R"
    if action in _CREATES:
        return "C"
    return "E" if action == "evaluation" else "U"


def audit_event_resource(record: dict[str, Any]) -> dict[str, Any]:
    """One audit record as an AuditEvent; the record itself (payload, hashes) travels in an entity's details."""
    actor = str(record["actor"])
    payload = record["payload"] if isinstance(record["payload"], str) else canonical(record["payload"])
    details = [
        {"type": "seq", "valueString": str(record["seq"])},
        {"type": "payload", "valueString": payload},
        {"type": "hash", "valueString": record["hash"]},
        {"type": "prev_hash", "valueString": record["prev_hash"]},
    ]
    if record.get("ruleset_version"):
        details.append({"type": "ruleset_version", "valueString": record["ruleset_version"]})
    return _checked(
        AuditEvent,
        {
            "resourceType": "AuditEvent",
            "id": f"A{record['seq']}",
            "type": {"system": AUDIT_ACTION, "code": record["action"]},
            "action": _action_code(record["action"]),
            "recorded": _iso(record["at"]),
            "outcome": "0",
            "agent": [{"who": {"display": actor}, "requestor": actor.startswith("user:")}],
            "source": {
                "observer": {"display": "wnb"},
                "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}],
            },
            "entity": [
                *(_subject_entity(str(subject)) for subject in record["subject"]),
                {
                    "what": {"identifier": {"system": AUDIT_RECORD, "value": str(record["seq"])}},
                    "detail": details,
                },
            ],
        },
    )


def searchset(
    resources: list[dict[str, Any]], total: int, base: str, self_url: str, next_url: str | None = None
) -> dict[str, Any]:
    """A searchset Bundle: the matches, then any included resources (Provenance), with paging links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if resources:  # FHIR JSON has no empty arrays
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "include" if resource["resourceType"] == "Provenance" else "match"},
            }
            for resource in resources
        ]
    return bundle


def communication_resource(
    communication_id: int,
    task_id: int,
    content: dict[str, Any],
    recipient: dict[str, Any],
    sent_at: datetime,
    text: str,
) -> dict[str, Any]:
    """A message sent from a task as a FHIR R4 Communication (issue 18): its reference as identifier, the child
    by NHS number, the task it is about, when it was sent, its recipient (by ODS code where known), and the
    minimum-necessary content as its one payload text. `recipient` holds name, organisation, ods and role."""
    who: dict[str, Any] = {"display": recipient["name"]}
    if recipient.get("ods"):
        who["identifier"] = {"system": ODS_SYSTEM, "value": recipient["ods"]}
        who["type"] = "Organization"
    return _checked(
        Communication,
        {
            "resourceType": "Communication",
            "id": f"M{communication_id}",
            "identifier": [{"system": MESSAGE_REFERENCE, "value": content["reference"]}],
            "status": "completed",
            "category": [{"coding": [{"system": RECIPIENT_ROLE, "code": recipient["role"]}]}],
            "subject": _patient(content["nhs_number"]),
            "about": [{"reference": f"Task/T{task_id}", "type": "Task"}],
            "sent": _iso(sent_at),
            "recipient": [who],
            "payload": [{"contentString": text}],
        },
    )
