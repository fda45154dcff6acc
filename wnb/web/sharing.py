"""Sending a task's message from the pages (issue 18 part 2): the "Send…" form of a sharing task (worklist and
child's page) sends by e-mail or FHIR, or prepares a letter; the letter's printable page (an audited read) and
its "Mark as sent" button."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRouter

from wnb.core.errors import Forbidden, WnbError
from wnb.core.sharing import text_lines
from wnb.service import Service
from wnb.web.render import PREFIX, flash, render
from wnb.web.session import ChildReader, CsrfChecked, Sender

router = APIRouter()

CHANNEL_WORDS = {"letter": "Letter (print, then mark sent)", "email": "Secure e-mail", "fhir": "FHIR message"}


def _back(back: str) -> RedirectResponse:
    return RedirectResponse(back if back.startswith(PREFIX + "/") else PREFIX + "/", status_code=303)


# Included before wnb/web/worklist.py's router (by module name), whose `/tasks/{task_id}/{action}` would take it.
@router.post("/tasks/{task_id}/send", dependencies=[CsrfChecked], summary="Send a task's message to its recipient")
def send(
    request: Request,
    task_id: str,
    principal: Sender,
    channel: Annotated[str, Form(max_length=20)] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """A letter opens its printable page; e-mail and FHIR are queued, and the task awaits acknowledgement."""
    wnb: Service = request.app.state.service
    try:  # a task of a role not theirs is refused by the service (wnb.core.policy): the refusal page, 403
        made = wnb.send_communication(task_id, channel, principal)
    except Forbidden:
        raise
    except WnbError as error:  # no contact, e-mail off or not secure, a message out already, an unknown channel
        flash(request, str(error), "error")
        return _back(back)
    if made.channel == "letter":
        flash(request, f"Letter {made.reference} to {made.recipient_name} is ready: print it, post it, mark it sent.")
        return RedirectResponse(f"{PREFIX}/communications/M{made.id}/letter", status_code=303)
    flash(request, f"Message {made.reference} to {made.recipient_name} is on its way; the task awaits acknowledgement.")
    return _back(back)


@router.get(
    "/communications/{communication_id}/letter",
    response_class=HTMLResponse,
    summary="A letter to print (an audited read)",
)
def letter(request: Request, communication_id: str, principal: ChildReader) -> HTMLResponse:
    wnb: Service = request.app.state.service
    message = wnb.read_communication(communication_id, principal, "web-letter")
    if message.channel != "letter":
        return render(request, "error.html", status_code=404, message=f"message {message.reference} is no letter")
    to = ", ".join(
        part for part in (message.recipient_name, message.recipient_ods and f"ODS {message.recipient_ods}") if part
    )
    return render(
        request,
        "letter.html",
        message=message,
        lines=text_lines(message.content, to),
        to=to,
        made_at=message.created_at,
    )


@router.post(
    "/communications/{communication_id}/sent", dependencies=[CsrfChecked], summary="Mark a printed letter sent"
)
def letter_sent(request: Request, communication_id: str, principal: Sender) -> RedirectResponse:
    wnb: Service = request.app.state.service
    try:
        sent = wnb.mark_letter_sent(communication_id, principal)
    except Forbidden:
        raise
    except WnbError as error:  # marked sent already, the task closed meanwhile
        flash(request, str(error), "error")
        return RedirectResponse(f"{PREFIX}/communications/{communication_id}/letter", status_code=303)
    flash(request, f"Letter {sent.reference} marked sent; task T{sent.task_id} awaits acknowledgement.")
    return RedirectResponse(f"{PREFIX}/children/{sent.nhs_number}#messages", status_code=303)
