"""The Rulesets page (issue 15): the registry's history, the difference between two versions, a version's evidence
and its safety case report; proposing a candidate (parameters edited in a form, or the files uploaded), approving
or rejecting it (clinical safety officer, password checked), activating it (admin). Every step is audited by the
registry (wnb.store.rulesets); the backtest of a proposal runs in the background (wnb.service.proposal_jobs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from wnb.api.auth import client_address
from wnb.core.calendar import london_time_on
from wnb.core.errors import WnbError
from wnb.core.policy import Action
from wnb.core.releases import Release, Status
from wnb.core.ruleset import SCENARIOS_FOLDER
from wnb.core.ruleset_edit import edit_parameters, editable_parameters
from wnb.core.wording import local
from wnb.service import Service
from wnb.service.proposal_jobs import interrupt_abandoned, run_again, start_proposal
from wnb.service.proposals import diff
from wnb.service.safety_reports import make_report
from wnb.store import ruleset_jobs, rulesets
from wnb.store.accounts import Principal
from wnb.store.signin import TooManyFailures, check_password
from wnb.web.render import PREFIX, flash, render
from wnb.web.session import CsrfChecked, Refused, may, viewer

router = APIRouter()

MAX_UPLOAD_FILES = 128  # the default ruleset is 78 files
MAX_UPLOAD_BYTES = 1024 * 1024  # all the files together
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the other fields

Reader = Annotated[Principal, Depends(viewer(Action.RULES_HISTORY))]
Proposer = Annotated[Principal, Depends(viewer(Action.RULES_PROPOSE))]
Approver = Annotated[Principal, Depends(viewer(Action.RULES_APPROVE))]
Activator = Annotated[Principal, Depends(viewer(Action.RULES_ACTIVATE))]


def status_words(release: Release) -> str:
    """A version's status as the page says it: `active, not yet approved` when no safety officer signed it."""
    words = release.status.value
    if release.status is Status.ACTIVE and not release.is_approved:
        words = "active, not yet approved"
    if release.status is Status.SCHEDULED and release.active_from is not None:
        words = f"scheduled: active from {local(release.active_from)}"
    return words + (" (rollback: review)" if release.rollback else "")


def _base_files(wnb: Service) -> tuple[dict[str, bytes], Release | None]:
    """The files a form edits: the active version's (or the service's own ruleset before any is registered)."""
    active = rulesets.active(wnb.db, wnb.clock())
    if active is not None:
        return rulesets.files_of(wnb.db, active.version), active
    from wnb.rule_files import read_files

    return read_files(wnb.ruleset.directory), None


@router.get("/rulesets", response_class=HTMLResponse, summary="The ruleset registry: history, proposals, diff")
def rulesets_page(request: Request, principal: Reader) -> HTMLResponse:
    wnb: Service = request.app.state.service
    found = list(reversed(rulesets.history(wnb.db)))
    interrupt_abandoned(wnb.db, wnb.clock())  # a job whose process has gone does not stay "running"
    return render(
        request,
        "rulesets.html",
        releases=found,
        status_words=status_words,
        jobs=ruleset_jobs.recent(wnb.db),
        limits=(MAX_UPLOAD_FILES, MAX_UPLOAD_BYTES),
    )


@router.get("/rulesets/diff", response_class=HTMLResponse, summary="What two ruleset versions differ in")
def diff_page(request: Request, principal: Reader, first: str = "", second: str = "") -> HTMLResponse:
    wnb: Service = request.app.state.service
    found = diff(wnb.db, first, second)
    return render(request, "ruleset_diff.html", found=found)


@router.get("/rulesets/jobs/{job_id}", response_class=HTMLResponse, summary="A proposal's background backtest")
def job_page(request: Request, job_id: int, principal: Reader) -> HTMLResponse:
    wnb: Service = request.app.state.service
    interrupt_abandoned(wnb.db, wnb.clock())  # a job whose process has gone does not stay "running"
    job = ruleset_jobs.job(wnb.db, job_id)
    if job is None:
        raise Refused(404, f"There is no proposal job {job_id}.")
    return render(request, "ruleset_job.html", job=job, may_propose=may(principal, Action.RULES_PROPOSE))


@router.post("/rulesets/jobs/{job_id}/again", dependencies=[CsrfChecked], summary="Run a proposal's job again")
def job_again(request: Request, job_id: int, principal: Proposer) -> Response:
    wnb: Service = request.app.state.service
    job = ruleset_jobs.job(wnb.db, job_id)
    if job is None:
        raise Refused(404, f"There is no proposal job {job_id}.")
    if job["state"] not in ("failed", "interrupted"):
        raise Refused(409, f"Proposal job {job_id} is {job['state']}: only a failed or interrupted job is run again.")
    try:
        again = run_again(wnb.db, job_id, principal, wnb.clock, run_tests=_run_tests())
    except WnbError as problem:
        return _rulesets_with_error(request, wnb, str(problem))
    return _started(request, again)


def _propose_form(
    request: Request, wnb: Service, values: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    files, active = _base_files(wnb)
    shown = [(name, (values or {}).get(name, str(value))) for name, value in editable_parameters(files)]
    return render(
        request, "ruleset_propose.html", status_code=status, parameters=shown, active=active, error=error,
        note=(values or {}).get("note", ""),
    )  # fmt: skip


@router.get("/rulesets/propose", response_class=HTMLResponse, summary="Propose a ruleset by editing its parameters")
def propose_form(request: Request, principal: Proposer) -> HTMLResponse:
    return _propose_form(request, request.app.state.service)


def _run_tests() -> bool:
    """Whether a proposal runs the system controls' named tests (WNB_PROPOSE_TESTS)."""
    from wnb.settings import load_settings

    return load_settings().propose_tests


def _started(request: Request, job_id: int) -> RedirectResponse:
    flash(request, f"Proposal checked and its scenarios passed; its backtest runs now (job {job_id}).")
    return RedirectResponse(f"{PREFIX}/rulesets/jobs/{job_id}", status_code=303)


@router.post("/rulesets/propose", dependencies=[CsrfChecked], summary="Propose the edited parameters")
async def propose_submit(request: Request, principal: Proposer) -> Response:
    wnb: Service = request.app.state.service
    form = await request.form()
    values = {key[2:]: value for key, value in form.items() if key.startswith("p:") and isinstance(value, str)}
    note_field = form.get("note")
    note = note_field.strip() if isinstance(note_field, str) else ""
    files, active = _base_files(wnb)
    where = f"edited from version {active.short}" if active else "edited from the configured ruleset"
    try:
        edited, changed = edit_parameters(files, values)
        if not changed:
            raise WnbError("no parameter changed: edit at least one value to propose a new version")
        job_id = start_proposal(
            wnb.db, edited, where, principal, note or f"changed {', '.join(changed)}", wnb.clock, run_tests=_run_tests()
        )
    except WnbError as problem:
        return _propose_form(request, wnb, {**values, "note": note}, str(problem), 400)
    return _started(request, job_id)


def _too_large(request: Request) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + _FORM_OVERHEAD:
        raise Refused(413, f"The upload is larger than {MAX_UPLOAD_BYTES // 1024} KB in all: it is refused.")


def _uploaded_name(upload: UploadFile, folder: str) -> str:
    name = PurePosixPath((upload.filename or "").replace("\\", "/")).name
    if not name.endswith(".yaml") or name.startswith("."):
        raise WnbError(f"{name or 'a file without a name'}: only .yaml ruleset and scenario files are taken")
    return folder + name


@router.post(
    "/rulesets/upload",
    dependencies=[Depends(_too_large), CsrfChecked],
    summary="Propose a ruleset by uploading its files",
)
async def upload_submit(request: Request, principal: Proposer) -> Response:
    wnb: Service = request.app.state.service
    form = await request.form(max_files=MAX_UPLOAD_FILES + 1, max_part_size=MAX_UPLOAD_BYTES)
    uploads = [(value, "") for value in form.getlist("files") if isinstance(value, UploadFile)]
    uploads += [(value, SCENARIOS_FOLDER) for value in form.getlist("scenarios") if isinstance(value, UploadFile)]
    uploads = [(upload, folder) for upload, folder in uploads if upload.filename]
    note_field = form.get("note")
    note = note_field.strip() if isinstance(note_field, str) else ""
    try:
        if not uploads:
            raise WnbError("choose the ruleset's files (ruleset.yaml, the rules, hazards.yaml) and its scenarios")
        if len(uploads) > MAX_UPLOAD_FILES:
            raise WnbError(f"{len(uploads)} files: at most {MAX_UPLOAD_FILES} files are taken in one upload")
        files: dict[str, bytes] = {}
        total = 0
        for upload, folder in uploads:
            name = _uploaded_name(upload, folder)
            content = await upload.read()
            total += len(content)
            if total > MAX_UPLOAD_BYTES:
                raise WnbError(f"the files are larger than {MAX_UPLOAD_BYTES // 1024} KB in all: the upload is refused")
            if name in files:
                raise WnbError(f"{name} was uploaded twice")
            files[name] = content
        job_id = start_proposal(
            wnb.db, files, "the uploaded files", principal, note or None, wnb.clock, run_tests=_run_tests()
        )
    except WnbError as problem:
        return _rulesets_with_error(request, wnb, str(problem))
    finally:
        await form.close()  # the uploads' spooled files
    return _started(request, job_id)


def _rulesets_with_error(request: Request, wnb: Service, error: str) -> HTMLResponse:
    return render(
        request,
        "rulesets.html",
        status_code=400,
        releases=list(reversed(rulesets.history(wnb.db))),
        status_words=status_words,
        jobs=ruleset_jobs.recent(wnb.db),
        limits=(MAX_UPLOAD_FILES, MAX_UPLOAD_BYTES),
        upload_error=error,
    )


def _version_page(request: Request, prefix: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    wnb: Service = request.app.state.service
    release = rulesets.find(wnb.db, prefix)
    history = rulesets.history(wnb.db)
    active = next((item for item in history if item.status is Status.ACTIVE), None)
    evidence: dict[str, Any] = rulesets.evidence_of(wnb.db, release.version)
    return render(
        request,
        "ruleset_version.html",
        status_code=status,
        release=release,
        status_words=status_words,
        evidence=evidence,
        active=active,
        reports=rulesets.reports_of(wnb.db, release.version),
        error=error,
        may_approve=may(request.state.principal, Action.RULES_APPROVE),
        may_activate=may(request.state.principal, Action.RULES_ACTIVATE),
    )


@router.get("/rulesets/{version}", response_class=HTMLResponse, summary="A ruleset version and its evidence")
def version_page(request: Request, version: str, principal: Reader) -> HTMLResponse:
    return _version_page(request, version)


@router.get("/rulesets/{version}/report", summary="The safety case report of a version (printable)")
def report_page(request: Request, version: str, principal: Reader) -> Response:
    wnb: Service = request.app.state.service
    report = make_report(wnb.db, version, principal.actor, wnb.clock())
    return HTMLResponse(report.html, headers={"X-Report-SHA256": report.sha256})


def _decide(
    request: Request, version: str, principal: Principal, reason: str, password: str, approved: bool
) -> Response:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    rulesets.find(wnb.db, version)  # an unknown version is said so before the password is checked
    try:
        person = check_password(
            wnb.db, principal.name, password, client_address(request), now, request.app.state.sign_in_limits, via="web"
        )
    except TooManyFailures as refused:
        return _version_page(request, version, f"Too many failed password checks: {refused.advice}.", 429)
    if person is None:
        return _version_page(request, version, "Wrong password: the decision is not recorded.", 403)
    try:
        decided = rulesets.decide(wnb.db, version, person, approved, reason, now)
    except WnbError as problem:
        return _version_page(request, version, str(problem), 409)
    flash(request, f"Version {decided.short} {decided.status.value} by {person.name}.")
    return RedirectResponse(f"{PREFIX}/rulesets/{decided.version}", status_code=303)


@router.post("/rulesets/{version}/approve", dependencies=[CsrfChecked], summary="Approve a proposed version")
def approve(
    request: Request,
    version: str,
    principal: Approver,
    reason: Annotated[str, Form(max_length=4000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    return _decide(request, version, principal, reason, password, approved=True)


@router.post("/rulesets/{version}/reject", dependencies=[CsrfChecked], summary="Reject a proposed version")
def reject(
    request: Request,
    version: str,
    principal: Approver,
    reason: Annotated[str, Form(max_length=4000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    return _decide(request, version, principal, reason, password, approved=False)


def activation_time(text: str, now: datetime) -> datetime:
    """When the activate form asks for: now when empty, else its UK wall-clock time (`2026-03-09T07:00`), which must
    be later than now."""
    if not text.strip():
        return now
    try:
        asked = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WnbError(f"{text!r} is not a date and time: give it as 2026-03-09T07:00 (UK time)") from None
    at = london_time_on(asked.date(), asked.time()) if asked.tzinfo is None else asked.astimezone(UTC)
    if at <= now:
        raise WnbError(f"{local(at)} has passed: give a later time, or leave it empty to activate now")
    return at


@router.post(
    "/rulesets/{version}/activate", dependencies=[CsrfChecked], summary="Activate a version now or at a later time"
)
def activate(
    request: Request, version: str, principal: Activator, at: Annotated[str, Form(max_length=40)] = ""
) -> Response:
    wnb: Service = request.app.state.service
    from wnb.settings import load_settings

    now = wnb.clock()
    try:
        when = activation_time(at, now)
        step = rulesets.activate(wnb.db, version, principal, when, now, load_settings().is_production)
    except WnbError as problem:
        return _version_page(request, version, str(problem), 409)
    release = step.release
    if release.status is Status.SCHEDULED:
        words = f"Version {release.short} is scheduled: it becomes active at {local(when)}."
    else:
        words = f"Version {release.short} is active from now."
    if release.rollback:
        words += " It was retired before: this rollback is audited and marked for review."
    flash(request, words)
    return RedirectResponse(f"{PREFIX}/rulesets/{release.version}", status_code=303)
