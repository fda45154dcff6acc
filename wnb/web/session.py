"""Who is signed in to the pages: a session kept on the server, a CSRF token per session, and role checks.

The cookie (Starlette's SessionMiddleware, signed with itsdangerous) holds the session's random token and
the CSRF token; the session and the account are read again on every request (wnb.sessions), so signing out,
a disabled account, a new password or a changed role count at once, and an old cookie replayed is nobody.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from wnb.accounts import Principal
from wnb.api.auth import PEOPLE_WHO_ACT, READERS
from wnb.domain import Role
from wnb.sessions import end_session, session_person, start_session

# Who may open which pages (ARCHITECTURE.md §8). Governance staff read reports and the audit log; the
# people who act work their worklist; data quality is for those who fix feeds and those who audit them.
WORKERS = PEOPLE_WHO_ACT
CHILD_READERS = READERS
GOVERNORS = frozenset({Role.GOVERNANCE, Role.SAFEGUARDING_LEAD, Role.ADMIN})
DATA_QUALITY = frozenset({Role.GOVERNANCE, Role.BOOKING_TEAM, Role.SAFEGUARDING_LEAD, Role.ADMIN})

# DOMAIN.md §5.7: a flag is resolved by the safeguarding team (and an administrator).
FLAG_RESOLVERS = frozenset({Role.SAFEGUARDING_NURSE, Role.NAMED_NURSE, Role.SAFEGUARDING_LEAD, Role.ADMIN})
# Who may act on a task another role owns (the worklist shows each person only their role's tasks).
ACT_FOR_ANY_ROLE = frozenset({Role.SAFEGUARDING_LEAD, Role.ADMIN})

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


def viewer(roles: frozenset[Role]) -> Callable[[Request], Principal]:
    """A dependency: the signed-in person when their role is in `roles`; else sign in (none) or 403."""

    def check(request: Request) -> Principal:
        principal = current_user(request)
        if principal is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInNeeded(path)
        if principal.role not in roles:
            raise Refused(403, f"Your role ({principal.role.value}) may not open this page.")
        request.state.principal = principal
        return principal

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
Worker = Annotated[Principal, Depends(viewer(WORKERS))]
FlagResolver = Annotated[Principal, Depends(viewer(FLAG_RESOLVERS))]
ChildReader = Annotated[Principal, Depends(viewer(CHILD_READERS))]
Governor = Annotated[Principal, Depends(viewer(GOVERNORS))]
DataQuality = Annotated[Principal, Depends(viewer(DATA_QUALITY))]
AnyPerson = Annotated[Principal, Depends(viewer(READERS))]
