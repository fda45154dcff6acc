"""Ingestion routes: attendance events (one or a batch) and a person's safeguarding context.

Every event is stored and evaluated before the answer. The body is read here rather than by FastAPI, so
a malformed body can be kept, as sent, in the data-quality queue and its size limited while it streams.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wnb.api.auth import ContextWriter, Ingester
from wnb.api.problems import PROBLEM_RESPONSES, Problem
from wnb.core import limits
from wnb.core.domain import EXAMPLE_EVENT, AttendanceEvent, PersonContext
from wnb.core.errors import InvalidEvent, NotBound
from wnb.core.items import RawItem, check_context
from wnb.core.nhs import nhs_number_problem, normalise_nhs_number
from wnb.service import Service
from wnb.store import idempotency
from wnb.store.accounts import Principal

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 1000

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class EventBatch(BaseModel):
    """Several canonical events in one request, each with its own result."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [EXAMPLE_EVENT]}]})

    events: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH, description=f"At most {MAX_BATCH} canonical events (AttendanceEvent)."
    )


class ItemResult(BaseModel):
    """What became of one event."""

    index: int | None = Field(
        default=None, description="The event's place in the batch, from 0 (absent for one event)."
    )
    source: str | None = Field(default=None, description="The event's `source`, when it had one.")
    event_id: str | None = Field(default=None, description="The event's `event_id`, when it had one.")
    status: str = Field(description="accepted, superseded, stale, duplicate or rejected")
    field: str | None = Field(default=None, description="For a rejected event, the field at fault, e.g. `nhs_number`.")
    reason: str | None = Field(
        default=None, description="For a rejected event, why; it is kept in the data-quality queue."
    )
    refused: bool = Field(default=False, exclude=True)  # rejected for the key's binding (NotBound)


class BatchResult(BaseModel):
    """What became of each event of a batch, in order, and how many of each."""

    results: list[ItemResult] = Field(description="One result per event, in the order sent.")
    counts: dict[str, int] = Field(description='How many events had each status, e.g. `{"accepted": 2}`.')


class ContextResult(BaseModel):
    """The context record stored."""

    nhs_number: str = Field(description="Whose context it is.")
    status: str = Field(description="created or updated")


# Schemas of bodies read by hand, with their definitions; the app adds them to the OpenAPI components.
SCHEMAS: dict[str, Any] = {}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    SCHEMAS.update(schema.pop("$defs", {}))
    SCHEMAS[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_EVENTS_BODY = _json_body({"oneOf": [_schema(AttendanceEvent), _schema(EventBatch)]})
_CONTEXT_BODY = _json_body(_schema(PersonContext))


def _origin(principal: Principal) -> str:
    return f"api:{principal.name}"


async def _read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(413, "body", f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Problem(413, "body", f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes) -> Any:
    """The body's JSON value, or InvalidEvent("body", ...) saying where it is malformed or past a limit."""
    try:  # bytes that are not UTF-8 parse as surrogate escapes: the item holding them is rejected on its own
        return limits.loads(_body_text(body), "body")
    except InvalidEvent as problem:
        raise InvalidEvent("body", problem.reason.replace("not valid JSON", "malformed JSON")) from None


def _body_text(body: bytes) -> str:
    """The body as text for a reject: bytes that are not UTF-8 kept (the reject stores them as base64)."""
    return body.decode("utf-8", errors="surrogateescape")


def _ingest(service: Service, principal: Principal, data: Any, text: str, index: int | None) -> ItemResult:
    """One item through the service; for a rejected item, the field and reason (the reject is queued there)."""
    if not isinstance(data, dict):
        not_object = InvalidEvent("event" if index is None else f"events.{index}", "an event must be a JSON object")
        service.ingest_one(RawItem(index, text, not_object), origin=_origin(principal), by=principal)
        return ItemResult(index=index, status="rejected", field=not_object.field, reason=not_object.reason)
    status, problem = service.ingest_one_or_reject(RawItem(index, text, data), origin=_origin(principal), by=principal)
    return ItemResult(
        index=index,
        source=_text(data.get("source")),
        event_id=_text(data.get("event_id")),
        status=status,
        field=problem.field if problem else None,
        reason=problem.reason if problem else None,
        refused=isinstance(problem, NotBound),
    )


def _ingest_together(service: Service, principal: Principal, events: list[Any]) -> list[ItemResult]:
    """A batch's items in one transaction (the service falls back to one each if that fails)."""
    items = [
        RawItem(index, limits.dumps(item), item)
        if isinstance(item, dict)
        else RawItem(index, limits.dumps(item), InvalidEvent(f"events.{index}", "an event must be a JSON object"))
        for index, item in enumerate(events)
    ]
    outcomes = service.ingest_many_explained(items, origin=_origin(principal), by=principal)
    results = []
    for item, (status, problem) in zip(items, outcomes, strict=True):
        data = item.data if isinstance(item.data, dict) else {}
        results.append(
            ItemResult(
                index=item.line,
                source=_text(data.get("source")),
                event_id=_text(data.get("event_id")),
                status=status,
                field=problem.field if problem else None,
                reason=problem.reason if problem else None,
            )
        )
    return results


def _text(value: Any) -> str | None:
    return None if value is None else limits.printable(str(value), 200)


def _handle_events(service: Service, principal: Principal, body: bytes) -> tuple[int, Any]:
    text = _body_text(body)
    try:
        data = _decode(body)
    except InvalidEvent as problem:
        service.ingest_one(RawItem(None, text, problem), origin=_origin(principal), by=principal)
        return 400, Problem(400, problem.field, problem.reason).body()
    if isinstance(data, dict) and "events" in data:
        return _handle_batch(service, principal, data, text)
    result = _ingest(service, principal, data, text, None)
    if result.status == "rejected":
        code = 403 if result.refused else 422  # 403: another source than the key's (kept as a reject too)
        return code, Problem(code, result.field, result.reason or "rejected").body()
    return 200, result.model_dump(exclude_none=True)


def _handle_batch(service: Service, principal: Principal, data: dict[str, Any], text: str) -> tuple[int, Any]:
    problem: InvalidEvent | None = None
    extra = sorted(set(data) - {"events"})
    if extra:
        problem = InvalidEvent(extra[0], "unknown field (a batch holds only `events`)")
    elif not isinstance(data["events"], list):
        problem = InvalidEvent("events", "must be a list of events")
    elif len(data["events"]) > MAX_BATCH:
        problem = InvalidEvent(
            "events", f"a batch holds at most {MAX_BATCH} events; this one has {len(data['events'])}"
        )
    if problem is not None:
        service.ingest_one(RawItem(None, text, problem), origin=_origin(principal), by=principal)
        return 422, Problem(422, problem.field, problem.reason).body()
    results = _ingest_together(service, principal, data["events"])
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return 200, BatchResult(results=results, counts=counts).model_dump(exclude_none=True)


@router.post(
    "/attendance-events",
    summary="Post one attendance event or a batch",
    description=(
        'The body is one canonical event (AttendanceEvent; docs/architecture.md, "The canonical event") or '
        '`{"events": [...]}` with at most '
        f"{MAX_BATCH} events; the body may be at most {MAX_BODY_BYTES} bytes (413 beyond). Each event is stored "
        "and evaluated before the answer. Result per event: accepted, superseded, stale, duplicate or rejected "
        "(with `field` and `reason`); a single rejected event answers 422, malformed JSON 400. A rejected event "
        "is kept in the data-quality queue. A repeated `Idempotency-Key` from the same client returns the first "
        "answer without a second effect; a repeated (`source`, `event_id`) is a duplicate."
    ),
    openapi_extra=_EVENTS_BODY,
    responses={200: {"model": ItemResult | BatchResult}},
)
async def post_attendance_events(
    request: Request,
    principal: Ingester,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=idempotency.MAX_KEY_LENGTH,
            description="The client's key for this request: sent again with the same body, the first answer comes back "
            "and nothing is done twice.",
        ),
    ] = None,
) -> JSONResponse:
    service: Service = request.app.state.service
    body = await _read_body(request)
    if idempotency_key:
        stored = await run_in_threadpool(idempotency.find, service.db, principal.actor, idempotency_key)
        if stored is not None:
            return _replay(stored, idempotency.request_hash(body))
    status_code, answer = await run_in_threadpool(_handle_events, service, principal, body)
    if idempotency_key:
        first = idempotency.StoredResponse(idempotency.request_hash(body), status_code, answer)
        stored = await run_in_threadpool(idempotency.remember, service.db, principal.actor, idempotency_key, first)
        if stored is not first:
            return _replay(stored, first.request_hash)
    return JSONResponse(answer, status_code=status_code)


def _replay(stored: idempotency.StoredResponse, body_hash: str) -> JSONResponse:
    if stored.request_hash != body_hash:
        raise Problem(422, "Idempotency-Key", "this key was used before with a different body")
    return JSONResponse(stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})


@router.put(
    "/people/{nhs_number}/context",
    summary="Insert or replace a person's safeguarding context",
    description=(
        'A context record (PersonContext; docs/readings.md, "Safeguarding context"). Its `nhs_number` may be left '
        "out; if given it must match the path."
    ),
    openapi_extra=_CONTEXT_BODY,
)
async def put_context(
    nhs_number: Annotated[str, Path(description="The person's NHS number.")], principal: ContextWriter, request: Request
) -> ContextResult:
    body = await _read_body(request)
    return await run_in_threadpool(_handle_context, request.app.state.service, principal, nhs_number, body)


def _handle_context(service: Service, principal: Principal, nhs_number: str, body: bytes) -> ContextResult:
    path_number = normalise_nhs_number(nhs_number)
    if problem_text := nhs_number_problem(path_number):
        raise Problem(422, "nhs_number", problem_text)
    text = _body_text(body)
    try:
        record = _decode(body)
    except InvalidEvent as problem:
        service.import_context([RawItem(None, text, problem)], origin=_origin(principal), by=principal)
        raise Problem(400, problem.field, problem.reason) from None
    item = RawItem(None, text, _context_problem(record, path_number) or record)
    counts = service.import_context([item], origin=_origin(principal), by=principal)
    if counts["rejected"]:
        refused = check_context(item)  # the reason the service gave, naming the field
        if isinstance(refused, InvalidEvent):
            raise refused
        raise Problem(422, None, "the context record was rejected")
    return ContextResult(nhs_number=path_number, status="created" if counts["created"] else "updated")


def _context_problem(record: Any, path_number: str) -> InvalidEvent | None:
    """Fills in a missing `nhs_number` from the path; says what is wrong with the record's shape."""
    if not isinstance(record, dict):
        return InvalidEvent("body", "a context record must be a JSON object")
    body_number = record.setdefault("nhs_number", path_number)
    if normalise_nhs_number(str(body_number)) != path_number:
        return InvalidEvent("nhs_number", "does not match the NHS number in the path")
    return None
