"""A signed-in person changes their own password (with the current one): every session of theirs ends, and
this browser goes on in a new one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wnb.api.auth import client_address
from wnb.core.errors import WnbError
from wnb.store.accounts import MIN_PASSWORD_LENGTH, change_password
from wnb.store.signin import TooManyFailures, check_password
from wnb.web.render import flash, home_for, render
from wnb.web.session import AnyPerson, CsrfChecked, sign_in

router = APIRouter()


def _form(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    return render(request, "password.html", status_code=status_code, error=error, minimum=MIN_PASSWORD_LENGTH)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, person: AnyPerson) -> Response:
    return _form(request)


@router.post("/password", response_class=HTMLResponse, dependencies=[CsrfChecked])
def password_submit(
    request: Request,
    person: AnyPerson,
    current: Annotated[str, Form(max_length=1000)] = "",
    new: Annotated[str, Form(max_length=1000)] = "",
    repeat: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    service = request.app.state.service
    if new != repeat:
        return _form(request, 400, "The new password and its repeat differ: type the same new password twice.")
    try:
        checked = check_password(
            service.db, person.name, current, client_address(request), service.clock(),
            request.app.state.sign_in_limits, via="web-password",
        )  # fmt: skip
    except TooManyFailures as refused:
        page = _form(request, 429, f"Too many wrong passwords: {refused.advice}.")
        page.headers["Retry-After"] = str(refused.retry_after_seconds)
        return page
    if checked is None:
        return _form(request, 400, "Your current password was wrong; your password is unchanged.")
    try:
        ended = change_password(service.db, person.name, new, actor=person)
    except WnbError as error:
        return _form(request, 400, f"Your password is unchanged: {error}.")
    sign_in(request, person)  # every session ended, this one too: this browser goes on in a new one
    others = ended - 1
    flash(request, f"Your password was changed. {others} other session{'s' if others != 1 else ''} signed out.")
    return RedirectResponse(home_for(person.role), status_code=303)
