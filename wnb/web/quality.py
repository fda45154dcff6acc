"""The data-quality queue: rejected rows with reason, source and raw text, and marking one handled (audited);
joined-up data quality above it: the context match rate, people with events but no context, context not
refreshed, and the free-text contacts that need structure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Engine

from wnb.core import policy
from wnb.core.errors import NotFound
from wnb.core.policy import Action, Principal
from wnb.service import Service
from wnb.settings import CONTEXT_MATCH_MIN, CONTEXT_STALE_DAYS, Settings
from wnb.store import listing, quality
from wnb.store.db import writing
from wnb.web.render import PREFIX, flash, render
from wnb.web.session import CsrfChecked, RejectsHandler, RejectsReader

router = APIRouter()


def parse_reject_ref(text: str) -> int:
    """`R12`, `r12` or `12` → 12."""
    body = text.strip().upper().removeprefix("R")
    if not body.isdigit():
        raise NotFound(f"{text!r} is not a rejected row id (e.g. R12)")
    return int(body)


def mark_handled(db: Engine, ref: str, by: Principal, note: str, at: datetime) -> int:
    """Mark rejected row `ref` handled by `by` (if the policy lets them), with the audit record in the same
    transaction."""
    policy.check(by, Action.REJECTS_HANDLE)
    actor = by.actor
    reject_id = parse_reject_ref(ref)
    with writing(db) as connection:
        quality.mark_handled(connection, reject_id, actor, note, at)
    return reject_id


@router.get("/rejects", response_class=HTMLResponse, summary="The data-quality queue")
def rejects_page(request: Request, principal: RejectsReader, show: str = "open") -> HTMLResponse:
    wnb: Service = request.app.state.service
    settings: Settings | None = getattr(request.app.state, "settings", None)
    stale_days = settings.context_stale_days if settings else CONTEXT_STALE_DAYS
    match_min = settings.context_match_min if settings else CONTEXT_MATCH_MIN
    with wnb.db.connect() as connection:
        items = listing.rejects(connection, include_handled=show == "all")
        handled = quality.handled(connection)
        coverage = quality.context_coverage(connection, wnb.clock(), stale_days)
        unstructured = quality.contacts_needing_structure(connection)
    return render(
        request,
        "rejects.html",
        items=items,
        handled=handled,
        show=show,
        coverage=coverage,
        match_min=match_min,
        unstructured=unstructured,
        listed=quality.LISTED,
    )


@router.post("/rejects/{ref}/handled", dependencies=[CsrfChecked], summary="Mark a rejected row handled")
def handle(
    request: Request, ref: str, principal: RejectsHandler, note: Annotated[str, Form(max_length=4000)] = ""
) -> RedirectResponse:
    wnb: Service = request.app.state.service
    reject_id = mark_handled(wnb.db, ref, principal, note.strip(), wnb.clock())
    flash(request, f"Rejected row R{reject_id} marked handled.")
    return RedirectResponse(f"{PREFIX}/rejects", status_code=303)
