"""FHIR R4 Appointment resources (alone or in a Bundle) mapped to canonical events (DOMAIN.md §2.1).

Validated with `fhir.resources` (its R4B models, which read R4 Appointments). The mapping:
- `source` and `appointment_id`: the Appointment's first identifier (system, value);
- `event_id`: the resource's `meta.versionId` under that identifier, else a hash of the resource, so the
  same version sent twice is one event;
- `nhs_number`: the participant whose actor identifier has the NHS number system;
- `date_of_birth`: `birthDate` of a contained Patient, when there is one;
- `service`: the first `serviceType` code (or text), else the first `specialty` code;
- `appointment_at`: `start`; `recorded_at`: `meta.lastUpdated`;
- `attendance` from `status`: noshow → did-not-attend; fulfilled, arrived, checked-in → attended;
  booked, pending, proposed → booked; cancelled → cancelled-by-patient when a `cancelationReason` code
  starts with `pat`, else cancelled-by-provider; entered-in-error withdraws the appointment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from pydantic import ValidationError

from wnb.core import limits
from wnb.core.errors import InvalidEvent
from wnb.core.items import RawItem

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
_STATUS = {
    "noshow": "did-not-attend",
    "fulfilled": "attended",
    "arrived": "attended",
    "checked-in": "attended",
    "booked": "booked",
    "pending": "booked",
    "proposed": "booked",
    "entered-in-error": "entered-in-error",
}


def _first_code(concepts: Any) -> str | None:
    for concept in concepts or []:
        for coding in concept.coding or []:
            if coding.code:
                return str(coding.code)
        if concept.text:
            return str(concept.text)
    return None


def _attendance(resource: Appointment) -> str:
    status = str(resource.status)
    if status == "cancelled":
        reason = _first_code([resource.cancelationReason]) if resource.cancelationReason else None
        return "cancelled-by-patient" if reason and reason.lower().startswith("pat") else "cancelled-by-provider"
    if status not in _STATUS:
        raise InvalidEvent("Appointment.status", f"status {status!r} is not an appointment outcome wnb can use")
    return _STATUS[status]


def _nhs_number(resource: Appointment) -> str:
    for participant in resource.participant or []:
        identifier = participant.actor.identifier if participant.actor else None
        if identifier is not None and identifier.system == NHS_NUMBER_SYSTEM and identifier.value:
            return str(identifier.value)
    raise InvalidEvent("Appointment.participant", f"no participant identified by an NHS number ({NHS_NUMBER_SYSTEM})")


def _date_of_birth(raw: dict[str, Any]) -> str | None:
    for contained in raw.get("contained") or []:
        if isinstance(contained, dict) and contained.get("resourceType") == "Patient" and contained.get("birthDate"):
            return str(contained["birthDate"])
    return None


def appointment_to_event(raw: dict[str, Any]) -> dict[str, Any]:
    """The canonical event of one Appointment resource; InvalidEvent naming the FHIR element otherwise."""
    if raw.get("resourceType") != "Appointment":
        raise InvalidEvent("resourceType", f"expected Appointment, got {raw.get('resourceType')!r}")
    try:
        resource = Appointment.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "Appointment"
        raise InvalidEvent(f"Appointment.{where}", str(first["msg"])) from None
    identifiers = [i for i in resource.identifier or [] if i.value]
    if not identifiers:
        raise InvalidEvent("Appointment.identifier", "an Appointment needs an identifier (system and value)")
    identifier = identifiers[0]
    if resource.start is None:
        raise InvalidEvent("Appointment.start", "the appointment's start time is required")
    service = _first_code(resource.serviceType) or _first_code(resource.specialty)
    if service is None:
        raise InvalidEvent("Appointment.serviceType", "a serviceType or specialty naming the service is required")
    version = resource.meta.versionId if resource.meta and resource.meta.versionId else None
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]
    event: dict[str, Any] = {
        "source": str(identifier.system or "fhir"),
        "event_id": f"{identifier.value}/_history/{version}" if version else f"{identifier.value}/{digest}",
        "nhs_number": _nhs_number(resource),
        "service": service,
        "appointment_id": str(identifier.value),
        "appointment_at": raw["start"],
        "attendance": _attendance(resource),
    }
    if born := _date_of_birth(raw):
        event["date_of_birth"] = born
    if resource.meta and resource.meta.lastUpdated:
        event["recorded_at"] = raw["meta"]["lastUpdated"]
    return event


def resources_of(document: Any) -> list[tuple[int | None, Any]]:
    """The (entry index, resource) pairs of a Bundle, or the one resource of a lone Appointment.

    An entry that is not an object stands for itself (its item is rejected); a `collection` Bundle is refused:
    it gathers resources for keeping, it is no request to store appointments.
    """
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        if document.get("type") == "collection":
            raise InvalidEvent("Bundle.type", "a collection Bundle is no request; send a batch or transaction Bundle")
        if document.get("type") not in ("batch", "transaction"):
            raise InvalidEvent("Bundle.type", "a Bundle of type batch or transaction is expected")
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            raise InvalidEvent("Bundle.entry", "must be a list of entries")
        return [
            (index, entry.get("resource") if isinstance(entry, dict) else _NotAnEntry(entry))
            for index, entry in enumerate(entries)
        ]
    return [(None, document)]


class _NotAnEntry:
    """A Bundle entry that is not an object: rejected as itself."""

    def __init__(self, value: Any) -> None:
        self.value = value


def to_item(index: int | None, resource: Any) -> RawItem:
    """One resource's RawItem: its canonical event, or why it could not be taken (whatever went wrong)."""
    if isinstance(resource, _NotAnEntry):
        not_object = InvalidEvent("Bundle.entry", "each entry must be an object")
        return RawItem(index, limits.dumps(resource.value), not_object)
    text = limits.dumps(resource)
    try:
        if not isinstance(resource, dict):
            raise InvalidEvent("Bundle.entry.resource", "each entry needs a resource")
        if problem := limits.value_problem(resource, "Appointment"):
            raise problem
        return RawItem(index, text, appointment_to_event(resource))
    except InvalidEvent as problem:
        return RawItem(index, text, problem)
    except Exception as error:  # a resource no check foresaw: rejected on its own, the rest goes on
        return RawItem(index, text, InvalidEvent("Appointment", limits.unexpected(error, "the resource")))


def read(path: Path) -> Iterator[RawItem]:
    """A file holding one Appointment or a Bundle of them (read whole: FHIR JSON is not line-delimited)."""
    # Bytes that are not UTF-8 are read as surrogate escapes: the resource holding them is rejected on its own.
    text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    try:
        pairs = resources_of(limits.loads(text, "file"))
    except InvalidEvent as problem:
        yield RawItem(None, text, problem)
        return
    for index, resource in pairs:
        yield to_item(index, resource)
