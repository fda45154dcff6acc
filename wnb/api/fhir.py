"""FHIR ingestion: `POST /fhir/Appointment` and `POST /fhir` (a batch or transaction Bundle).

Each Appointment is mapped to a canonical event (wnb.fhir.appointments), stored and evaluated before the answer.
Answers are FHIR: an OperationOutcome for one Appointment, a batch-response Bundle for a Bundle, with the
HTTP status of each entry (201 accepted, 200 superseded, stale or duplicate, 422 rejected, 403 for an
identifier system that is not one of the key's bound sources, matched exactly).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from wnb.api.auth import Ingester
from wnb.api.ingestion import MAX_BATCH, _body_text, _decode, _origin, _read_body
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.core.errors import InvalidEvent, NotBound, StaleEvent
from wnb.core.items import RawItem
from wnb.fhir.appointments import resources_of, to_item
from wnb.service import Service
from wnb.store.accounts import Principal

router = APIRouter(prefix="/fhir", responses=PROBLEM_RESPONSES, tags=["FHIR"])
FHIR_JSON = "application/fhir+json"
_HTTP_STATUS = {
    "accepted": "201 Created",
    "superseded": "200 OK",
    "stale": "200 OK",
    "duplicate": "200 OK",
    "rejected": "422 Unprocessable Entity",
}


def _outcome(status: str, problem: InvalidEvent | None = None) -> dict[str, Any]:
    issue: dict[str, Any]
    if isinstance(problem, StaleEvent):  # stored, but never evaluated: the sender should know why
        issue = {
            "severity": "warning",
            "code": "conflict",
            "diagnostics": problem.reason,
            "expression": [problem.field],
        }
    elif problem is not None:
        issue = {"severity": "error", "code": "invalid", "diagnostics": problem.reason, "expression": [problem.field]}
    else:
        issue = {"severity": "information", "code": "informational", "diagnostics": status}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _entry_status(status: str, problem: InvalidEvent | None) -> str:
    return "403 Forbidden" if isinstance(problem, NotBound) else _HTTP_STATUS[status]


def _ingest(service: Service, principal: Principal, item: RawItem) -> tuple[str, InvalidEvent | None]:
    return service.ingest_one_or_reject(item, origin=_origin(principal), by=principal)


def _handle(service: Service, principal: Principal, body: bytes, bundle_expected: bool) -> tuple[int, Any]:
    text = _body_text(body)
    try:
        document = _decode(body)
        pairs = resources_of(document)
        is_bundle = isinstance(document, dict) and document.get("resourceType") == "Bundle"
        if bundle_expected and not is_bundle:
            raise InvalidEvent("resourceType", "POST /fhir takes a Bundle of type batch or transaction")
        if not bundle_expected and is_bundle:
            raise InvalidEvent("resourceType", "POST /fhir/Appointment takes one Appointment; send a Bundle to /fhir")
        if len(pairs) > MAX_BATCH:
            raise InvalidEvent("Bundle.entry", f"a Bundle holds at most {MAX_BATCH} entries here")
    except InvalidEvent as refused:
        service.ingest_one(RawItem(None, text, refused), origin=_origin(principal), by=principal)
        return (400 if refused.field == "body" else 422), _outcome("rejected", refused)
    if not bundle_expected:
        status, problem = _ingest(service, principal, to_item(None, pairs[0][1]))
        code = 201 if status == "accepted" else 200
        if status == "rejected":  # 403: the identifier system is not a source the key is bound to
            code = 403 if isinstance(problem, NotBound) else 422
        return code, _outcome(status, problem)
    items = [to_item(index, resource) for index, resource in pairs]
    outcomes = service.ingest_many_explained(items, origin=_origin(principal), by=principal)  # one transaction
    entries = [
        {"response": {"status": _entry_status(status, problem), "outcome": _outcome(status, problem)}}
        for status, problem in outcomes
    ]
    return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": entries}


@router.post(
    "/Appointment",
    summary="Post one FHIR R4 Appointment",
    description=(
        'Its status is mapped as docs/readings.md ("Attendance") says (noshow → did-not-attend, …); answers an '
        "OperationOutcome."
    ),
)
async def post_appointment(request: Request, principal: Ingester) -> JSONResponse:
    body = await _read_body(request)
    code, answer = await run_in_threadpool(_handle, request.app.state.service, principal, body, False)
    return JSONResponse(answer, status_code=code, media_type=FHIR_JSON)


@router.post(
    "",
    summary="Post a FHIR Bundle (batch or transaction) of Appointments",
    description=f"At most {MAX_BATCH} entries; answers a batch-response Bundle with each entry's status.",
)
async def post_bundle(request: Request, principal: Ingester) -> JSONResponse:
    body = await _read_body(request)
    code, answer = await run_in_threadpool(_handle, request.app.state.service, principal, body, True)
    return JSONResponse(answer, status_code=code, media_type=FHIR_JSON)
