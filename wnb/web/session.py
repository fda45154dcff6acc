"""Who is signed in to the pages: a session kept on the server, a CSRF token per session, and role checks.

The cookie (Starlette's SessionMiddleware, signed with itsdangerous) holds the session's random token and
the CSRF token; the session and the account are read again on every request (wnb.store.sessions), so signing out,
a disabled account, a new password or a changed role count at once, and an old cookie replayed is nobody.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from wnb.core import policy
from wnb.core.domain import Role
from wnb.core.policy import Action
from wnb.store.accounts import Principal
from wnb.store.sessions import end_session, session_person, start_session

SESSION_HOURS = 10  # a ward shift; the cookie expires after it and the person signs in again


class SignInNeeded(Exception):
    """No one is signed in: the page answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__(next_path)


class Refused(Exception):
    """The signed-in person's role may not do this, or a form came without its CSRF token."""

    def __init__(self, status_code: int, reason: str) -> None:
        self.status_code = status_code
        self.reason = reason
        super().__init__(reason)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def current_user(request: Request) -> Principal | None:
    """The person signed in, or None (no session, an ended or expired one, a disabled account)."""
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    service = request.app.state.service
    return session_person(service.db, token, service.clock())


def sign_in(request: Request, principal: Principal) -> None:
    """Start a fresh session for `principal` (a new CSRF token too, so a token seen before sign-in is useless)."""
    service = request.app.state.service
    if isinstance(token := request.session.get("sid"), str):
        end_session(service.db, token)  # a session this browser had before is never left behind
    request.session.clear()
    request.session["sid"] = start_session(service.db, principal.name, service.clock(), SESSION_HOURS)
    csrf_token(request)


def sign_out(request: Request) -> None:
    """End the session on the server, and replace the browser's cookie by an empty one."""
    if isinstance(token := request.session.get("sid"), str):
        end_session(request.app.state.service.db, token)
    request.session.clear()


def may(principal: Principal | None, action: Action) -> bool:
    """Whether the person may do `action` (wnb.core.policy): what the menu and the buttons show."""
    return principal is not None and policy.allows(principal, action)


class SentHome(Exception):
    """A person opened a page their role has no use for (governance, the worklist): off to their own first page."""

    def __init__(self, role: Role | None) -> None:
        self.role = role
        super().__init__(role)


def viewer(action: Action, send_home: bool = False) -> Callable[[Request], Principal]:
    """A dependency: the signed-in person when the policy allows them `action`; else sign in (none) or 403
    (with `send_home`, a redirect to their role's first page instead)."""

    def check(request: Request) -> Principal:
        principal = current_user(request)
        if principal is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInNeeded(path)
        if not policy.allows(principal, action):
            if send_home:
                raise SentHome(principal.role)
            assert principal.role is not None
            raise Refused(
                403, f"Your role ({principal.role.value}) may not open this page: {policy.refusal_reason(action)}."
            )
        request.state.principal = principal
        return principal

    check.guards_action = action  # type: ignore[attr-defined]
    return check


async def csrf_checked(request: Request) -> None:
    """A dependency for every form POST: refuse (403) a form whose `csrf` field is not this session's token."""
    form = await request.form()
    given = form.get("csrf")
    expected = request.session.get("csrf")
    if not isinstance(given, str) or not isinstance(expected, str) or not hmac.compare_digest(given, expected):
        raise Refused(403, "The form was missing its security token (CSRF) or it had expired. Reload and try again.")


def sign_in_location(next_path: str) -> str:
    """The sign-in page, sending the person on to `next_path` afterwards."""
    return f"/web/sign-in?next={quote(next_path, safe='')}"


CsrfChecked = Depends(csrf_checked)
Worker = Annotated[Principal, Depends(viewer(Action.TASK_ACKNOWLEDGE))]  # the task itself is checked by Service
FlagResolver = Annotated[Principal, Depends(viewer(Action.FLAG_RESOLVE))]
Claimer = Annotated[Principal, Depends(viewer(Action.TASK_CLAIM))]
Releaser = Annotated[Principal, Depends(viewer(Action.TASK_RELEASE))]
Sender = Annotated[Principal, Depends(viewer(Action.COMMUNICATION_SEND))]  # the task itself is checked by Service
Assigner = Annotated[Principal, Depends(viewer(Action.TASK_ASSIGN))]  # the task's chain is checked by Service
ChildReader = Annotated[Principal, Depends(viewer(Action.RECORDS_READ))]
Explainer = Annotated[Principal, Depends(viewer(Action.RECORDS_EXPLAIN))]
Governor = Annotated[Principal, Depends(viewer(Action.GOVERNANCE_READ))]
AuditReader = Annotated[Principal, Depends(viewer(Action.AUDIT_READ))]
Simulator = Annotated[Principal, Depends(viewer(Action.RULES_SIMULATE))]
RejectsReader = Annotated[Principal, Depends(viewer(Action.REJECTS_READ))]
RejectsHandler = Annotated[Principal, Depends(viewer(Action.REJECTS_HANDLE))]
Worklister = Annotated[Principal, Depends(viewer(Action.WORKLIST, send_home=True))]
AnyPerson = Annotated[Principal, Depends(viewer(Action.ACCOUNT_PASSWORD))]  # every person: their own account
