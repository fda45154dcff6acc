"""The page a message's recipient opens to acknowledge it (issue 18 part 3): `/web/ack/{token}`.

Anonymous by design: the signed, expiring link is the proof, and the page shows no personal data (the trust's
name for wnb, the message's reference, a name field and a button), so a link forwarded or read over a shoulder
tells nothing. Opening it (GET) never acknowledges, since mail scanners follow links; the button (POST) does, once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRouter

from wnb.core.ack_links import BadLink
from wnb.core.errors import InvalidAction, NotFound
from wnb.core.sharing import CommunicationStatus
from wnb.core.wording import local
from wnb.service import Service
from wnb.store.communications import Communication
from wnb.web.render import render
from wnb.web.session import CsrfChecked

router = APIRouter()


def _page(request: Request, token: str, status_code: int = 200, **shown: object) -> HTMLResponse:
    return render(request, "acknowledge.html", status_code, token=token, **shown)


def _done(message: Communication) -> str:
    assert message.acknowledged_at is not None
    return f"Message {message.reference} was acknowledged on {local(message.acknowledged_at)}. Thank you."


@router.get("/ack/{token}", response_class=HTMLResponse, summary="The acknowledgement page of a message's link")
def acknowledge_form(request: Request, token: str) -> HTMLResponse:
    wnb: Service = request.app.state.service
    try:
        message = wnb.message_of_link(token)
    except (BadLink, NotFound) as error:
        return _page(request, token, 410 if isinstance(error, BadLink) and error.expired else 404, error=str(error))
    if message.status == CommunicationStatus.ACKNOWLEDGED.value:
        return _page(request, token, reference=message.reference, done=_done(message))
    return _page(request, token, reference=message.reference)


@router.post("/ack/{token}", response_class=HTMLResponse, dependencies=[CsrfChecked], summary="Acknowledge a message")
def acknowledge_submit(request: Request, token: str, name: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    wnb: Service = request.app.state.service
    try:
        message = wnb.acknowledge_by_link(token, name)
    except (BadLink, NotFound) as error:
        return _page(request, token, 410 if isinstance(error, BadLink) and error.expired else 404, error=str(error))
    except InvalidAction as error:
        found = wnb.message_of_link(token)
        if found.status == CommunicationStatus.ACKNOWLEDGED.value:
            return _page(request, token, 409, reference=found.reference, done=_done(found))
        return _page(request, token, 422, reference=found.reference, error=str(error))
    return _page(request, token, reference=message.reference, done=_done(message))
