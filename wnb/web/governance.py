"""Governance pages: the dashboard for a period (with charts and CSV), the audit log browser, explain, simulate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from wnb.api.downloads import csv_download
from wnb.core.audit_words import RecordWords, record_words
from wnb.core.calendar import london_date
from wnb.core.csv_cells import csv_text
from wnb.core.errors import WnbError
from wnb.core.refs import parse_ref
from wnb.core.releases import Release
from wnb.core.ruleset import Ruleset, load_files
from wnb.core.wording import due_in_words
from wnb.service import Service
from wnb.service.explain import explain_item
from wnb.service.simulate import Simulation, period_of, simulate
from wnb.store import audit, repo, rulesets
from wnb.store.audit_search import AuditFilter, audit_page
from wnb.store.db import writing
from wnb.store.reports import PeriodBy, dashboard
from wnb.web.charts import bar_chart
from wnb.web.render import render
from wnb.web.session import AuditReader, CsrfChecked, Explainer, Governor, Simulator

router = APIRouter()
PAGE = 50


def _period(first: str, last: str, now: datetime) -> tuple[date, date, str | None]:
    """The chosen days (default: the last 30 days to today, UK dates) and a complaint when they were not dates."""
    today = london_date(now)
    try:
        end_day = date.fromisoformat(last) if last else today
        start_day = date.fromisoformat(first) if first else end_day - timedelta(days=29)
    except ValueError:
        return today - timedelta(days=29), today, "Dates must look like 2026-03-01; showing the last 30 days."
    if end_day < start_day:
        return start_day, start_day, "The period ended before it started; showing its first day."
    return start_day, end_day, None


def _dated_by(by: str) -> PeriodBy:
    """The period's dates as asked (`?by=processed`); the appointments' dates unless asked otherwise."""
    return PeriodBy.PROCESSED if by == PeriodBy.PROCESSED.value else PeriodBy.APPOINTMENT


def rule_label(rule_id: str, titles: dict[str, str]) -> str:
    """`WNB-02 · A child known to a lead professional …`: a rule's id and title (the id alone when the current
    ruleset no longer has it)."""
    title = titles.get(rule_id)
    return f"{rule_id} · {title}" if title else rule_id


@router.get("/governance", response_class=HTMLResponse, summary="Governance dashboard for a period")
def governance(request: Request, principal: Governor, first: str = "", last: str = "", by: str = "") -> HTMLResponse:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    start_day, end_day, problem = _period(first, last, now)
    start, end = period_of(start_day, end_day)
    with wnb.db.connect() as connection:
        board = dashboard(connection, start, end, now, _dated_by(by))
    titles = {rule.id: rule.title for rule in wnb.ruleset.rules}
    rules_chart = bar_chart(
        "Flags and tasks raised per rule",
        [(rule_label(rule, titles), [board.flags_by_rule[rule], board.tasks_by_rule[rule]]) for rule in board.rules],
        ["flags", "tasks"],
        labels_above=True,
    )
    feeds_chart = bar_chart(
        "Events accepted and rows rejected per source",
        [(feed.source, [feed.accepted, feed.rejected]) for feed in board.feeds],
        ["accepted", "rejected"],
    )
    return render(
        request,
        "governance.html",
        board=board,
        first=start_day.isoformat(),
        last=end_day.isoformat(),
        by=board.by.value,
        titles=titles,
        problem=problem,
        rules_chart=rules_chart,
        feeds_chart=feeds_chart,
        due=lambda at: due_in_words(at, now),
    )


@router.get("/governance.csv", summary="The governance dashboard's figures as CSV")
def governance_csv(request: Request, principal: Governor, first: str = "", last: str = "", by: str = "") -> Response:
    wnb: Service = request.app.state.service
    start_day, end_day, _ = _period(first, last, wnb.clock())
    start, end = period_of(start_day, end_day)
    with wnb.db.connect() as connection:
        board = dashboard(connection, start, end, wnb.clock(), _dated_by(by))
    name = f"wnb-governance-{start_day.isoformat()}-to-{end_day.isoformat()}.csv"
    return csv_download(csv_text(board.csv_rows()), name)  # formula-like cells escaped (wnb/core/csv_cells.py)


@router.get("/audit", response_class=HTMLResponse, summary="The audit log, filtered, with the chain's status")
def audit_log(
    request: Request,
    principal: AuditReader,
    actor: str = "",
    action: str = "",
    subject: str = "",
    first: str = "",
    last: str = "",
    before: int = 0,
) -> HTMLResponse:
    wnb: Service = request.app.state.service
    problem, since, until = None, None, None
    try:
        if first:
            since = period_of(date.fromisoformat(first), date.fromisoformat(first))[0]
        if last:
            until = period_of(date.fromisoformat(last), date.fromisoformat(last))[1]
    except ValueError:
        problem = "Dates must look like 2026-03-01."
    wanted = AuditFilter(actor, action, subject, since, until, before)
    with wnb.db.connect() as connection:
        page = audit_page(connection, wanted, PAGE)
        verification = audit.verify(connection)
    return render(
        request,
        "audit.html",
        records=page.records,
        actions=page.actions,
        verification=verification,
        total=page.total,
        filters={"actor": actor, "action": action, "subject": subject, "first": first, "last": last},
        next_before=page.records[-1]["seq"] if page.more else None,
        problem=problem,
        describe=_describer(wnb.ruleset),
    )


def _describer(ruleset: Ruleset) -> Callable[[dict[str, Any]], RecordWords]:
    """What each record says, in words: codes and rules by the titles of the ruleset in force."""

    def rule_title(rule_id: str) -> str:
        return next((rule.title for rule in ruleset.rules if rule.id == rule_id), "a rule of another ruleset")

    def describe(record: dict[str, Any]) -> RecordWords:
        return record_words(record["action"], record["payload"] or {}, ruleset.title, rule_title)

    return describe


@router.get("/explain/{ref}", response_class=HTMLResponse, summary="Why a flag or task was raised")
def explain(request: Request, ref: str, principal: Explainer) -> HTMLResponse:
    wnb: Service = request.app.state.service
    with writing(wnb.db) as connection:
        lines = explain_item(connection, ref, wnb.ruleset)
        kind = "F" if ref.strip().upper().startswith("F") else "T"
        item_id = parse_ref(ref, kind)
        row = repo.flag_by_id(connection, item_id) if kind == "F" else repo.task_by_id(connection, item_id)
        assert row is not None  # explain_item found it
        log = audit.AuditLog(connection)  # the explanation shows the child's facts: a read of their record
        log.append(
            wnb.clock(), principal.actor, "record_read", [row.nhs_number, f"{kind}{item_id}"], {"view": "web-explain"}
        )
        log.finish()
    return render(request, "explain.html", ref=ref.upper(), lines=lines)


@router.get("/simulate", response_class=HTMLResponse, summary="Try a ruleset version of the registry on a past period")
def simulate_form(request: Request, principal: Simulator) -> HTMLResponse:
    wnb: Service = request.app.state.service
    start_day, end_day, _ = _period("", "", wnb.clock())
    return render(
        request,
        "simulate.html",
        versions=_versions(wnb),
        version="",
        first=start_day.isoformat(),
        last=end_day.isoformat(),
        result=None,
        error=None,
    )


def _versions(wnb: Service) -> list[Release]:
    """The registry's versions a simulation may choose, newest proposal first (never a path on the server)."""
    return list(reversed(rulesets.history(wnb.db)))


def _audit_simulation(wnb: Service, actor: str, result: Simulation) -> None:
    """Governance trying a ruleset on past data is itself on the record (which ruleset, which period)."""
    with writing(wnb.db) as connection:
        log = audit.AuditLog(connection)
        payload = {
            "candidate_version": result.candidate_version,
            "from": result.start,
            "to": result.end,
            "events_replayed": result.events_replayed,
            "differs": result.differs,
        }
        log.append(wnb.clock(), actor, "simulation_run", [result.candidate_version[:12]], payload)
        log.finish()


@router.post("/simulate", response_class=HTMLResponse, dependencies=[CsrfChecked], summary="Run a simulation")
def simulate_run(
    request: Request,
    principal: Simulator,
    version: Annotated[str, Form(max_length=100)],
    first: Annotated[str, Form()],
    last: Annotated[str, Form()],
) -> HTMLResponse:
    wnb: Service = request.app.state.service
    result, error = None, None
    try:
        start, end = period_of(date.fromisoformat(first), date.fromisoformat(last))
        release = rulesets.find(wnb.db, version)
        candidate = load_files(rulesets.files_of(wnb.db, release.version), f"version {release.short}")
        result = simulate(wnb.db, candidate, start, end)
        _audit_simulation(wnb, principal.actor, result)
    except ValueError:
        error = "The period's days must look like 2026-03-01."
    except WnbError as problem:
        error = str(problem)
    return render(
        request,
        "simulate.html",
        status_code=200 if error is None else 400,
        versions=_versions(wnb),
        version=version,
        first=first,
        last=last,
        result=result,
        error=error,
        current_version=wnb.ruleset.short_version,
    )
