"""Errors as HTTP answers: one machine-readable shape, `{"status", "field", "reason"}`, for every refusal."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

from wnb.core.errors import Forbidden, InvalidAction, InvalidEvent, NotBound, NoteRequired, NotFound, WnbError
from wnb.store.concurrency import DatabaseUnavailable, is_connection_loss

_STATUS_WORDS = {
    503: "unavailable",
    400: "rejected",
    401: "refused",
    403: "refused",
    404: "not_found",
    409: "conflict",
    413: "rejected",
    429: "refused",
}


class ProblemBody(BaseModel):
    """Why a request was refused: `status` in a word, the `field` at fault (when one is), and the `reason`."""

    status: str = Field(description="In a word: rejected, refused, not_found, conflict or unavailable.")
    field: str | None = Field(description="The field, header or part of the body at fault, if one is.")
    reason: str = Field(description="Why, in a sentence a person can act on.")


# Documented on every /v1 route, so the OpenAPI document shows the shape errors really have.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemBody, "description": description}
    for code, description in {
        400: "Malformed JSON",
        401: "No or wrong API key or password",
        403: "The caller's role may not use this endpoint",
        404: "No such item",
        409: "The item's status does not allow the action",
        413: "Body too large",
        422: "A field is missing, unknown or invalid",
        429: "Too many failed sign-ins for this user name from this address: wait Retry-After seconds",
    }.items()
}


class Problem(Exception):
    """An answer other than success: HTTP status, the field at fault (if any) and why."""

    def __init__(self, status_code: int, field: str | None, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status_code = status_code
        self.field = field
        self.reason = reason
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"status": _STATUS_WORDS.get(self.status_code, "rejected"), "field": self.field, "reason": self.reason}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


def problem_from(error: WnbError) -> Problem:
    """wnb's own errors by kind: HTTP status codes live only in the API layer."""
    if isinstance(error, Forbidden):
        return Problem(403, None, str(error))
    if isinstance(error, NotBound):
        return Problem(403, error.field, error.reason)
    if isinstance(error, InvalidEvent):
        return Problem(422, error.field, error.reason)
    if isinstance(error, NotFound):
        return Problem(404, None, str(error))
    if isinstance(error, NoteRequired):
        return Problem(422, "note", str(error))
    if isinstance(error, InvalidAction):
        return Problem(409, None, str(error))
    return Problem(400, None, str(error))


def _validation_problem(error: RequestValidationError) -> Problem:
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    if location and location[0] in ("body", "query", "path", "header"):
        location = location[1:]
    field = ".".join(location) or "body"
    if first.get("type") == "json_invalid":
        return Problem(400, "body", f"malformed JSON: {first.get('ctx', {}).get('error', first['msg'])}")
    reason = "unknown field" if first.get("type") == "extra_forbidden" else str(first["msg"])
    return Problem(422, field, reason.removeprefix("Value error, "))


def install_handlers(app: FastAPI) -> None:
    async def on_problem(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Problem)
        return error.response()

    async def on_wnb_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, WnbError)
        return problem_from(error).response()

    async def on_validation(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return _validation_problem(error).response()

    async def on_database_error(_request: Request, error: Exception) -> JSONResponse:
        # Replicas: a database restart or dropped connection is an answer the client can retry, never a 500.
        if isinstance(error, DatabaseUnavailable) or is_connection_loss(error):
            reason = "the database is unavailable; nothing was stored, try again"
            return Problem(503, None, reason, headers={"Retry-After": "2"}).response()
        raise error

    app.add_exception_handler(DatabaseUnavailable, on_database_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(psycopg.Error, on_database_error)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(WnbError, on_wnb_error)
    app.add_exception_handler(RequestValidationError, on_validation)
