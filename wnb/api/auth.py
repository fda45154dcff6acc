"""Who is calling (ARCHITECTURE.md §8): API keys for systems, HTTP Basic for people; each route's action is
checked against wnb.core.policy (403 when the caller's role may not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials

from wnb.api.problems import Problem
from wnb.core import policy
from wnb.core.errors import Forbidden
from wnb.core.policy import Action
from wnb.store.accounts import Principal, client_for_key
from wnb.store.signin import TooManyFailures, check_password

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key of a client system")
_basic = HTTPBasic(auto_error=False, description="User name and password of a person", realm="wnb")

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="wnb"'}


def client_address(request: Request) -> str:
    """The address a request came from (uvicorn takes it from X-Forwarded-For only when a trusted proxy sent it)."""
    return request.client.host if request.client is not None else "unknown"


async def authenticate(
    request: Request,
    key: Annotated[str | None, Depends(_api_key)],
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Principal:
    """The caller, by API key or else by password; 401 when neither is given or valid.

    A key is looked up on the event loop when the database is a local SQLite file (one indexed read in WAL
    mode, which never waits for a writer: cheaper than a hop to a worker thread); on a networked database,
    and for a password (argon2 is slow on purpose), the work goes to a worker thread. Passwords are counted
    against (user name, client address) like the pages' sign-in (wnb.store.signin): 429 while delayed or locked.
    """
    db = request.app.state.service.db
    if key:
        if db.dialect.name == "sqlite":
            client = client_for_key(db, key)
        else:
            client = await run_in_threadpool(client_for_key, db, key)
        if client is None:
            raise Problem(401, "X-API-Key", "unknown or revoked API key", headers=_CHALLENGE)
        return client
    if credentials is not None:
        service, address = request.app.state.service, client_address(request)
        try:
            user = await run_in_threadpool(
                check_password, db, credentials.username, credentials.password, address, service.clock(),
                request.app.state.sign_in_limits, "api",
            )  # fmt: skip
        except TooManyFailures as refused:
            raise Problem(
                429, "authorization", str(refused), headers={"Retry-After": str(refused.retry_after_seconds)}
            ) from None
        if user is None:
            raise Problem(401, "authorization", "wrong user name or password", headers=_CHALLENGE)
        return user
    raise Problem(401, None, "authentication required: an X-API-Key header or HTTP Basic", headers=_CHALLENGE)


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only callers the policy allows `action` (403 otherwise).

    A client key never bound (made before bindings) is refused every write, with a message naming `wnb keys bind`.
    """

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:  # async: no thread hop
        try:
            policy.check(principal, action)
        except Forbidden as refused:
            raise Problem(403, None, str(refused)) from None
        writes = action in (Action.EVENTS_INGEST, Action.CONTEXT_WRITE)
        if writes and principal.kind == policy.Kind.CLIENT and not principal.is_admin and principal.sources is None:
            raise Problem(403, "X-API-Key", policy.UNBOUND_KEY.format(name=principal.name))
        return principal

    check.guards_action = action  # type: ignore[attr-defined]  # read by the app's check that every route is guarded
    return check


Ingester = Annotated[Principal, Depends(require(Action.EVENTS_INGEST))]
ContextWriter = Annotated[Principal, Depends(require(Action.CONTEXT_WRITE))]
Reader = Annotated[Principal, Depends(require(Action.RECORDS_READ))]
FamilyReader = Annotated[Principal, Depends(require(Action.FAMILY_READ))]
Acknowledger = Annotated[Principal, Depends(require(Action.COMMUNICATION_ACKNOWLEDGE))]
AuditReader = Annotated[Principal, Depends(require(Action.AUDIT_READ))]
GovernanceReader = Annotated[Principal, Depends(require(Action.GOVERNANCE_READ))]
MetricsReader = Annotated[Principal, Depends(require(Action.METRICS_READ))]
TaskActor = Annotated[Principal, Depends(require(Action.TASK_ACKNOWLEDGE))]  # the task itself is checked by Service
FlagResolver = Annotated[Principal, Depends(require(Action.FLAG_RESOLVE))]
TaskClaimer = Annotated[Principal, Depends(require(Action.TASK_CLAIM))]
TaskAssigner = Annotated[Principal, Depends(require(Action.TASK_ASSIGN))]
TaskReleaser = Annotated[Principal, Depends(require(Action.TASK_RELEASE))]
Sender = Annotated[Principal, Depends(require(Action.COMMUNICATION_SEND))]  # the task itself is checked by Service
