"""A child's page: appointments and outcomes across services, flags, tasks with their history, safeguarding
statuses and contacts, and for the safeguarding team the family view (related people's active flags, each an
audited read of that person). Opening it is an audited read, like the API's timeline; resolving a flag needs a
reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wnb.api.downloads import csv_download
from wnb.core import chronology as rows
from wnb.core.calendar import london_date
from wnb.core.nhs import nhs_number_problem, normalise_nhs_number
from wnb.core.policy import Action
from wnb.core.refs import parse_ref
from wnb.service import Service
from wnb.service.sharing_effects import send_choices
from wnb.store import children, chronology, communications, family, listing, recipients, repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.web.render import PREFIX, age_in_words, flash, render
from wnb.web.session import ChildReader, CsrfChecked, FlagResolver, may
from wnb.web.sharing import CHANNEL_WORDS

router = APIRouter()


@router.get("/children", response_class=HTMLResponse, summary="Find a child by NHS number")
def find_child(request: Request, principal: ChildReader, nhs_number: str = "") -> Any:
    if nhs_number:
        number = normalise_nhs_number(nhs_number)
        problem = nhs_number_problem(number)
        if problem is None:
            return RedirectResponse(f"{PREFIX}/children/{number}", status_code=303)
        return render(request, "find_child.html", status_code=400, error=problem, nhs_number=nhs_number)
    return render(request, "find_child.html", error=None, nhs_number="")


@router.get("/children/{nhs_number}", response_class=HTMLResponse, summary="A child's page (an audited read)")
def child_page(request: Request, nhs_number: str, principal: ChildReader) -> HTMLResponse:
    wnb: Service = request.app.state.service
    number = normalise_nhs_number(nhs_number)
    if problem := nhs_number_problem(number):
        return render(request, "find_child.html", status_code=400, error=problem, nhs_number=nhs_number)
    with writing(wnb.db) as connection:
        appointments = children.appointments(connection, number)
        flags = listing.flags(connection, include_closed=True, nhs_number=number)
        tasks = listing.tasks(connection, include_closed=True, nhs_number=number)
        history = {item["id"]: repo.task_history_of(connection, int(item["id"][1:])) for item in tasks}
        came_from = {
            f"{kind[0].upper()}{item_id}": found
            for kind, items in (("flag", flags), ("task", tasks))
            for item_id, found in children.origins(connection, kind, [int(item["id"][1:]) for item in items]).items()
        }
        context = repo.person_context(connection, number)
        contacts = recipients.completed_contacts(connection, context.structured_contacts if context else ())
        born = children.births(connection, {number}).get(number)
        timeline = chronology.entries(connection, number, wnb.ruleset.title)
        messages = communications.of_person(connection, number)
        open_tasks = [task for task in tasks if task["status"] in repo.OPEN_STATUSES]
        senders = (
            send_choices(connection, open_tasks, london_date(wnb.clock()), wnb.sharing)
            if may(principal, Action.COMMUNICATION_SEND)
            else {}
        )
        audit = AuditLog(connection)
        audit.append(wnb.clock(), principal.actor, "record_read", [number], {"view": "web-child-page"})
        # None for a role without the family view: then no related person is read, nor audited.
        relatives = family.read(connection, audit, number, context, wnb.clock(), principal, "web-family")
        audit.finish()
    return render(
        request,
        "child.html",
        nhs_number=number,
        age=age_in_words(born, wnb.clock()),
        born=born,
        chronology=timeline,
        appointments=appointments,
        active_flags=red_first([flag for flag in flags if flag["status"] == "active"]),
        past_flags=red_first([flag for flag in flags if flag["status"] != "active"]),
        open_tasks=open_tasks,
        messages=messages,
        senders=senders,
        channel_words=CHANNEL_WORDS,
        here=request.url.path,
        closed_tasks=[task for task in tasks if task["status"] not in repo.OPEN_STATUSES],
        history=history,
        came_from=came_from,
        context=context,
        contacts=contacts,
        shows_family=relatives is not None,
        family=relatives or [],
        may_resolve=may(principal, Action.FLAG_RESOLVE),
    )


@router.get(
    "/children/{nhs_number}/chronology", summary="A child's chronology to print (HTML) or as CSV (an audited read)"
)
def chronology_export(
    request: Request,
    nhs_number: str,
    principal: ChildReader,
    form: Annotated[str, Query(alias="format", description="html (to print) or csv")] = "html",
) -> Response:
    wnb: Service = request.app.state.service
    number = normalise_nhs_number(nhs_number)
    if problem := nhs_number_problem(number):
        return render(request, "find_child.html", status_code=400, error=problem, nhs_number=nhs_number)
    if form not in ("html", "csv"):
        return render(request, "error.html", status_code=400, message="format: use html or csv")
    now = wnb.clock()
    entries = chronology.export(wnb.db, number, principal.actor, now, f"web-{form}", wnb.ruleset.title)
    if form == "csv":
        return csv_download(rows.as_csv(entries), f"chronology-{number}.csv")
    return HTMLResponse(rows.as_html(number, entries, now), headers={"Content-Security-Policy": rows.PRINT_POLICY})


def red_first(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Red flags before amber, each level in the order raised: the most serious is read first."""
    return sorted(flags, key=lambda flag: (flag["level"] != "red", flag["raised_at"], int(flag["id"][1:])))


@router.post("/flags/{flag_id}/resolve", dependencies=[CsrfChecked], summary="Resolve a flag, with a reason")
def resolve(
    request: Request,
    flag_id: str,
    principal: FlagResolver,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> RedirectResponse:
    wnb: Service = request.app.state.service
    if not reason.strip():
        flash(request, "Resolving a flag needs a reason: say why it no longer applies.", "error")
    else:
        row = wnb.resolve_flag(flag_id, principal, reason.strip())
        flash(request, f"Flag F{row.id} ({wnb.ruleset.title(row.code)}) resolved.")
        return RedirectResponse(f"{PREFIX}/children/{row.nhs_number}", status_code=303)
    with wnb.db.connect() as connection:
        flag = repo.flag_by_id(connection, parse_ref(flag_id, "F"))
    target = f"{PREFIX}/children/{flag.nhs_number}" if flag else f"{PREFIX}/"
    return RedirectResponse(target, status_code=303)
