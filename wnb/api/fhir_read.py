"""FHIR search: `GET /fhir/Flag`, `GET /fhir/Task` and `GET /fhir/AuditEvent` answer R4 searchset Bundles.

Search parameters: `patient:identifier` (also `patient`, `subject`, `for`, with `:identifier` or
`.identifier`) as `[system|]NHS number`; `status` and `code` (comma-separated alternatives); for AuditEvent
`date` with `ge`/`gt`/`le`/`lt` prefixes, `type` (the audit action) and `patient:identifier`; `_count` and
`_offset` for pages; `_revinclude=Provenance:target` adds each flag's or task's Provenance. An unknown
parameter is refused (400 OperationOutcome) rather than ignored, so a typo never widens a search over
children's records. Flags and tasks are for the people who act and governance; AuditEvents for governance.
A search naming a child is recorded in the audit log as a read of that child's record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wnb.api.auth import AuditReader, Reader
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.core.domain import FlagStatus, TaskStatus
from wnb.core.kinds import FHIR_TASK_STATUS
from wnb.core.nhs import nhs_number_problem, normalise_nhs_number
from wnb.fhir import resources as fhir_resources
from wnb.fhir.appointments import NHS_NUMBER_SYSTEM
from wnb.service import Service
from wnb.store import fhir_rows
from wnb.store.accounts import Principal
from wnb.store.audit import AuditLog
from wnb.store.db import writing

router = APIRouter(prefix="/fhir", responses=PROBLEM_RESPONSES, tags=["FHIR"])
FHIR_JSON = "application/fhir+json"
MAX_COUNT = 1000
_PATIENT_NAMES = {
    f"{name}{suffix}" for name in ("patient", "subject", "for") for suffix in ("", ":identifier", ".identifier")
}
_PAGING = {"_count", "_offset"}


class SearchError(ValueError):
    """A search parameter wnb cannot use; answered 400 with an OperationOutcome naming it."""

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        super().__init__(reason)


def _outcome(error: SearchError) -> JSONResponse:
    issue = {"severity": "error", "code": "invalid", "diagnostics": str(error), "expression": [error.parameter]}
    return JSONResponse({"resourceType": "OperationOutcome", "issue": [issue]}, 400, media_type=FHIR_JSON)


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise SearchError(name, f"{name} may be given once")
    return values[0] if values else None


def _patient(request: Request, allowed: set[str]) -> str | None:
    given = [name for name in request.query_params if name in allowed]
    if not given:
        return None
    if len(given) > 1 or len(request.query_params.getlist(given[0])) > 1:
        raise SearchError(given[0], "name one patient, once")
    token = request.query_params[given[0]]
    system, _, value = token.rpartition("|")
    if system and system != NHS_NUMBER_SYSTEM:
        raise SearchError(given[0], f"patients are searched by NHS number ({NHS_NUMBER_SYSTEM}|number)")
    number = normalise_nhs_number(value)
    if problem := nhs_number_problem(number):
        raise SearchError(given[0], problem)
    return number


def _tokens(request: Request, name: str, system: str | None, allowed: set[str] | None = None) -> tuple[str, ...]:
    text = _one(request, name)
    if text is None:
        return ()
    values = []
    for token in text.split(","):
        token_system, bar, value = token.rpartition("|")
        if bar and system is not None and token_system not in ("", system):
            raise SearchError(name, f"{name} codes are in the system {system}")
        if allowed is not None and value not in allowed:
            raise SearchError(name, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        values.append(value)
    return tuple(values)


def _page(request: Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        text = _one(request, name)
        if text is None:
            return default
        if not text.isdigit():
            raise SearchError(name, f"{name} must be a whole number")
        return int(text)

    return min(number("_count", 100), MAX_COUNT), number("_offset", 0)


def _check_known(request: Request, known: set[str]) -> None:
    for name in request.query_params:
        if name not in known:
            raise SearchError(name, f"unknown search parameter {name!r}; wnb supports {', '.join(sorted(known))}")


def _links(request: Request, total: int, count: int, offset: int) -> tuple[str, str, str | None]:
    base = str(request.base_url).rstrip("/") + "/fhir"
    next_url = None
    if offset + count < total:
        next_url = str(request.url.include_query_params(_offset=offset + count, _count=count))
    return base, str(request.url), next_url


def _audit_read(service: Service, principal: Principal, nhs_number: str, view: str) -> None:
    with writing(service.db) as connection:
        audit = AuditLog(connection)
        audit.append(service.clock(), principal.actor, "record_read", [nhs_number], {"view": view})
        audit.finish()


def _search_items(request: Request, principal: Principal, kind: str) -> JSONResponse:
    service: Service = request.app.state.service
    patient_names = _PATIENT_NAMES if kind == "task" else {n for n in _PATIENT_NAMES if not n.startswith("for")}
    try:
        _check_known(request, patient_names | _PAGING | {"status", "code", "_revinclude"})
        nhs_number = _patient(request, patient_names)
        # A task's FHIR status is its own but for awaiting-acknowledgement (FHIR `in-progress`): searched by either.
        fhir_words = {} if kind == "flag" else {fhir: ours for ours, fhir in FHIR_TASK_STATUS.items()}
        statuses = {s.value for s in (FlagStatus if kind == "flag" else TaskStatus)} | set(fhir_words)
        code_system = fhir_resources.FLAG_CODE if kind == "flag" else fhir_resources.TASK_CODE
        count, offset = _page(request)
        revinclude = _one(request, "_revinclude")
        if revinclude not in (None, "Provenance:target"):
            raise SearchError("_revinclude", "only Provenance:target can be included")
        search = fhir_rows.Search(
            nhs_number=nhs_number,
            statuses=tuple(fhir_words.get(value, value) for value in _tokens(request, "status", None, statuses)),
            codes=_tokens(request, "code", code_system),
            count=count,
            offset=offset,
        )
    except SearchError as error:
        return _outcome(error)
    with service.db.connect() as connection:
        total, rows = fhir_rows.items(connection, kind, search)
    build = fhir_resources.flag_resource if kind == "flag" else fhir_resources.task_resource
    resources = [build(row) for row in rows]
    if revinclude:
        resources += [fhir_resources.provenance_resource(kind, row) for row in rows]
    if nhs_number:
        _audit_read(service, principal, nhs_number, f"fhir-{kind}")
    bundle = fhir_resources.searchset(resources, total, *_links(request, total, count, offset))
    return JSONResponse(bundle, media_type=FHIR_JSON)


def _documented(*names: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI entries for search parameters read from the query string (so /docs lists them)."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
            for name, text in names
        ]
    }


_PATIENT_DOC = ("patient:identifier", f"{NHS_NUMBER_SYSTEM}|NHS number (or the number alone)")
_ITEM_DOCS = (
    _PATIENT_DOC,
    ("status", "comma-separated statuses"),
    ("code", "comma-separated codes, [system|]code"),
    ("_revinclude", "Provenance:target adds each item's Provenance"),
    ("_count", f"page size (at most {MAX_COUNT}, default 100)"),
    ("_offset", "matches to skip (the next link gives it)"),
)


@router.get(
    "/Flag",
    summary="Search flags as FHIR R4 Flags",
    description="By patient:identifier (NHS number), status, code; _revinclude=Provenance:target for provenance.",
    openapi_extra=_documented(*_ITEM_DOCS),
)
def search_flags(request: Request, principal: Reader) -> JSONResponse:
    return _search_items(request, principal, "flag")


@router.get(
    "/Task",
    summary="Search tasks as FHIR R4 Tasks",
    description="By patient:identifier (NHS number), status, code; _revinclude=Provenance:target for provenance.",
    openapi_extra=_documented(*_ITEM_DOCS),
)
def search_tasks(request: Request, principal: Reader) -> JSONResponse:
    return _search_items(request, principal, "task")


def _dates(request: Request) -> tuple[datetime | None, datetime | None]:
    since = until = None
    for text in request.query_params.getlist("date"):
        prefix, value = (text[:2], text[2:]) if text[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", text)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise SearchError("date", f"{value!r} is not an ISO-8601 date-time") from None
        if moment.tzinfo is None:
            raise SearchError("date", f"{value!r} needs a time zone offset")
        if prefix in ("ge", "gt", "eq"):
            since = moment
        if prefix in ("le", "lt", "eq"):
            until = moment
    return since, until


@router.get(
    "/AuditEvent",
    summary="Search the audit log as FHIR R4 AuditEvents (governance)",
    description="By date (ge/le prefixes), type (the audit action) and patient:identifier; in chain order.",
    openapi_extra=_documented(
        _PATIENT_DOC,
        ("date", "ge|gt|le|lt|eq then an ISO-8601 time with offset; may repeat"),
        ("type", "comma-separated audit actions (evaluation, flag_raised, task_escalated, ...)"),
        ("_count", f"page size (at most {MAX_COUNT}, default 100)"),
        ("_offset", "matches to skip"),
    ),
)
def search_audit_events(request: Request, principal: AuditReader) -> JSONResponse:
    service: Service = request.app.state.service
    names = {"patient", "patient:identifier", "entity:identifier"}
    try:
        _check_known(request, names | _PAGING | {"date", "type"})
        since, until = _dates(request)
        count, offset = _page(request)
        search = fhir_rows.Search(
            nhs_number=_patient(request, names),
            codes=_tokens(request, "type", fhir_resources.AUDIT_ACTION),
            count=count,
            offset=offset,
            since=since,
            until=until,
        )
    except SearchError as error:
        return _outcome(error)
    with service.db.connect() as connection:
        total, records = fhir_rows.audit_records(connection, search)
    resources: list[dict[str, Any]] = [fhir_resources.audit_event_resource(record) for record in records]
    return JSONResponse(
        fhir_resources.searchset(resources, total, *_links(request, total, count, offset)), media_type=FHIR_JSON
    )
