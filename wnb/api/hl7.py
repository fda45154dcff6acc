"""HL7 v2 over HTTP: `POST /v1/hl7` takes one SIU message, as the MLLP listener does, and answers its ACK.

A client key is held to the sources it is bound to: a message whose MSH-4 (its source) is another is kept
in the data-quality queue and answered `MSA|AR` with 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from wnb.api.auth import Ingester
from wnb.api.ingestion import _origin, _read_body
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.core.errors import NotBound
from wnb.ingest.mllp import handle_message

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, tags=["HL7"])
HL7_MEDIA = "application/hl7-v2"


@router.post(
    "/hl7",
    summary="Post one HL7 v2 SIU message; the answer is its ACK",
    description=(
        "The body is one message (segments separated by CR or newlines), stored and evaluated before the "
        "answer. `MSA|AA` with 200 once committed; `MSA|AE` with 422 for invalid content; `MSA|AR` with 400 for "
        "a message wnb cannot use, and with 403 for a source (MSH-4) the key is not bound to. Every refused "
        "message is kept in the data-quality queue with its reason. The body's media type is not checked "
        "(`application/hl7-v2` or `text/plain`); the ACK comes as `application/hl7-v2`."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}},
    response_class=Response,
)
async def post_hl7(request: Request, principal: Ingester) -> Response:
    body = await _read_body(request)
    service = request.app.state.service
    answer = await run_in_threadpool(handle_message, service, body, by=principal, origin=_origin(principal))
    status = {"AA": 200, "AE": 422, "AR": 403 if isinstance(answer.problem, NotBound) else 400}[answer.code]
    return Response(answer.ack, status_code=status, media_type=HL7_MEDIA)
