"""One authorisation policy (issue 11): the README's table, a walk of every route and command against
wnb.core.policy.ENTRY_POINTS, and each refusal an attacker tried, on SQLite and PostgreSQL through a real server."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

import wnb.cli.main  # noqa: F401  (imports every command module)
from tests.conftest import ROOT
from tests.factories import event, raw
from tests.ingest.test_hl7 import siu
from tests.server import serving
from wnb.api import create_app
from wnb.api.app import entry_points
from wnb.cli.main import app as cli_app
from wnb.core import policy
from wnb.core.domain import Role
from wnb.core.errors import Forbidden, WnbError
from wnb.core.items import RawItem
from wnb.core.policy import ENTRY_POINTS, Action, Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store import audit, listing, repo
from wnb.store.accounts import bind_api_key, create_api_key, create_user, disable_user, list_api_keys
from wnb.store.tables import ApiKeyRow

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

CHILD = "9990000018"  # on a child-protection plan: WNB-01 raises a red flag and five tasks
PLAN = {"date_of_birth": "2019-05-01", "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}]}
PEOPLE = [role for role in Role if role is not Role.CLINIC_SYSTEM]  # every role a person's account may have
SECRET = "policy-test-session-secret-0123456789"


def password(role: Role) -> str:
    return f"{role.value} long passphrase"


def person_name(role: Role) -> str:
    return f"{role.value}.walker"


@dataclass
class Site:
    url: str
    service: Service
    keys: dict[str, str]  # name → key

    def key(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.keys[name]}, timeout=20)

    def person(self, role: Role) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(person_name(role), password(role)), timeout=20)

    def tasks(self, **where: str) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            items = listing.tasks(connection, include_closed=True, nhs_number=CHILD)
        return [item for item in items if all(item[k] == v for k, v in where.items())]

    def flags(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.flags(connection, include_closed=True, nhs_number=CHILD)

    def rejects(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.rejects(connection)

    def audit(self, action: str) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
            return [dict(row._mapping) for row in connection.execute(query)]


@pytest.fixture
def site(db_url: str, ruleset: Ruleset) -> Iterator[Site]:
    """A child on a plan missed an appointment (WNB-01: red flag, five tasks); a person of every role; keys."""
    db = open_database(db_url)
    service = Service(db, ruleset)
    for role in PEOPLE:
        create_user(db, person_name(role), role.value, password(role))
    keys = {
        "pas": create_api_key(db, "clinic-system", "pas", sources=["pas"]),  # events only, no context
        "register": create_api_key(db, "clinic-system", "register", context=True),  # the child register
        "ehr": create_api_key(db, "clinic-system", "ehr", sources=["community-ehr"]),
        "fhir": create_api_key(db, "clinic-system", "fhir", sources=["https://pas.example.nhs.uk/appointment"]),
        "hl7": create_api_key(db, "clinic-system", "hl7", sources=["RXX-PAS"]),
        "booking": create_api_key(db, "booking-team", "booking-desk"),
        "walker": create_api_key(db, "clinic-system", "walker", sources=["pas"], context=True),
        "ops": create_api_key(db, "admin", "ops"),
    }
    service.import_context([RawItem(1, json.dumps({"nhs_number": CHILD, **PLAN}), {"nhs_number": CHILD, **PLAN})], "t")
    service.ingest_one(raw(event("e1"), line=None), origin="feed")
    app = create_app(service, settings=load_settings(session_secret=SECRET))
    with serving(app) as url:
        yield Site(url, service, keys)
    db.dispose()


# ---- the README's table ----


def test_the_readme_holds_the_policy_tables_generated_from_the_policy_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(policy.README_START), readme.index(policy.README_END) + len(policy.README_END)
    assert readme[start:end] == policy.readme_section(), "run `python -m wnb.core.policy README.md`"


def test_the_table_lists_every_action_once_with_the_roles_the_pages_allowed() -> None:
    table = policy.markdown_table()
    for action in Action:
        assert table.count(f"| `{action.value}` |") == 1
    assert policy.POLICY[Action.FLAG_RESOLVE].roles == {
        Role.SAFEGUARDING_NURSE,
        Role.NAMED_NURSE,
        Role.SAFEGUARDING_LEAD,
        Role.ADMIN,
    }
    assert policy.task_roles("named-nurse", "safeguarding-nurse") == {
        Role.NAMED_NURSE,
        Role.SAFEGUARDING_NURSE,
        Role.SAFEGUARDING_LEAD,
        Role.ADMIN,
    }


def test_the_family_view_is_for_the_safeguarding_team_alone() -> None:
    assert policy.POLICY[Action.FAMILY_READ].roles == {
        Role.SAFEGUARDING_NURSE,
        Role.NAMED_NURSE,
        Role.SAFEGUARDING_LEAD,
        Role.ADMIN,
    }  # not the booking team, clinicians, governance or a clinic system, who may read the child's own record
    assert ENTRY_POINTS["GET /v1/people/{nhs_number}/family"] == (Action.FAMILY_READ,)
    assert policy.POLICY[Action.FAMILY_READ].roles < policy.POLICY[Action.RECORDS_READ].roles


def test_a_family_view_is_answered_to_the_named_nurse_and_refused_to_a_clinician_and_a_key(site: Site) -> None:
    path = f"/v1/people/{CHILD}/family"
    with site.person(Role.NAMED_NURSE) as client:
        allowed = client.get(path)
    with site.person(Role.CLINICIAN) as client:
        clinician = client.get(path)
    with site.key("walker") as client:
        key = client.get(path)
    assert allowed.status_code == 200 and allowed.json() == {"nhs_number": CHILD, "family": []}
    assert clinician.status_code == 403 and "safeguarding-nurse" in clinician.json()["reason"]
    assert key.status_code == 403
    assert [record["actor"] for record in site.audit("record_read")] == [f"user:{person_name(Role.NAMED_NURSE)}"]


def test_a_key_and_a_person_of_the_same_name_are_never_the_same_actor() -> None:
    assert Principal(Kind.CLIENT, "sam", Role.ADMIN).actor == "client:sam"
    assert Principal(Kind.USER, "sam", Role.ADMIN).actor == "user:sam"


# ---- the route walk ----


def _routes() -> dict[str, Any]:
    app = create_app(
        Service(open_database("sqlite://"), policy_ruleset()), settings=load_settings(session_secret=SECRET)
    )
    return dict(entry_points(app.routes))


@functools.cache
def policy_ruleset() -> Ruleset:
    from wnb.rule_files import load_ruleset

    return load_ruleset(ROOT / "rules" / "default")


def test_every_route_of_the_app_is_in_the_entry_points_table_and_every_entry_is_a_route() -> None:
    found = set(_routes())
    listed = {key for key in ENTRY_POINTS if not key.startswith("cli ")}
    assert found - listed == set(), "routes missing from wnb.core.policy.ENTRY_POINTS"
    assert listed - found == set(), "wnb.core.policy.ENTRY_POINTS names routes the app does not have"
    # The pages' routes come from included routers, which recent FastAPI keeps out of `app.routes`.
    assert "POST /web/tasks/{task_id}/{action}" in found and "GET /v1/flags" in found


def _commands(group: Any, prefix: str = "cli") -> Iterator[str]:
    """Every command's path under the Typer app's click group (typer vendors click: a group has `commands`)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


def test_every_command_of_the_cli_is_in_the_entry_points_table_and_every_entry_is_a_command() -> None:
    found = set(_commands(typer.main.get_command(cli_app)))
    listed = {key for key in ENTRY_POINTS if key.startswith("cli ")}
    assert found - listed == set(), "commands missing from wnb.core.policy.ENTRY_POINTS"
    assert listed - found == set(), "wnb.core.policy.ENTRY_POINTS names commands the CLI does not have"


def _fill(path: str, task: str, flag: str, action: str) -> str:
    values = {
        "nhs_number": CHILD, "task_id": task, "flag_id": flag, "action": action, "ref": "R1", "job_id": "1",
        "version": "abcdef0123", "communication_id": "M1", "token": "1.1.not-signed",
    }  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], path)


def _body(key: str) -> dict[str, Any]:
    """A small request for each route: refused or let in, which is all the walk asks."""
    if key.endswith("/resolve"):
        return {"json": {"reason": "walked"}} if " /v1/" in key else {"data": {"reason": "walked"}}
    if key.endswith("/wait"):
        wait = {"until": "2026-03-04", "reason": "walked"}
        return {"json": wait} if " /v1/" in key else {"data": wait}
    if key.endswith("/communications"):  # a channel given: the service then checks the task's owners
        return {"json": {"channel": "letter"}} if " /v1/" in key else {"data": {"channel": "letter"}}
    if key.endswith("/send"):
        return {"data": {"channel": "letter"}}
    if key.endswith("/ack") and "/communications/" in key:  # a name given: the service then checks the recipient
        return {"json": {"name": "walked"}}
    if key == "POST /v1/hl7":
        return {"content": b"MSH|not a message", "headers": {"Content-Type": "application/hl7-v2"}}
    if key.startswith(("POST /v1/", "PUT /v1/", "POST /fhir")):
        return {"json": {}}
    if key == "POST /web/simulate":
        return {"data": {"version": "abcdef0123", "first": "2026-03-01", "last": "2026-03-02"}}
    return {"data": {}} if key.startswith("POST /web/") else {}


def _allowed(key: str, role: Role | None, task: dict[str, Any]) -> bool:
    actions = ENTRY_POINTS[key]
    if actions is None:
        return True
    if role is None:
        return False
    who = Principal(Kind.CLIENT if role is Role.CLINIC_SYSTEM else Kind.USER, "walker", role, frozenset({"pas"}), True)
    if key == "POST /web/tasks/acknowledge":  # none selected: let in, and told to select some
        return policy.allows(who, Action.TASK_ACKNOWLEDGE)
    if set(actions) <= set(policy.TASK_ACTIONS.values()):  # a task's owners, the lead and an admin
        return all(policy.may_act_on_task(who, a, task["owner_role"], task["owner_role"]) for a in actions)
    if actions == (Action.COMMUNICATION_ACKNOWLEDGE,):  # a key bound to the message's recipient: the walker is not
        return policy.allows(who, Action.COMMUNICATION_ACKNOWLEDGE) and role is Role.ADMIN
    if actions == (Action.COMMUNICATION_SEND,):  # from a task: its owners; a message (M1, none): the role alone
        if "communication_id" in key or key == "cli task letter-sent":
            return policy.allows(who, Action.COMMUNICATION_SEND)
        return policy.may_act_on_task(who, Action.COMMUNICATION_SEND, task["owner_role"], task["owner_role"])
    chain = policy_ruleset().escalation_chain(Role(task["owner_role"]))
    if actions == (Action.TASK_CLAIM,):  # a member of its role; the walker's claim is released by them below
        return policy.allows(who, Action.TASK_CLAIM) and role.value == task["owner_role"]
    if actions == (Action.TASK_ASSIGN,):
        return policy.may_assign(who, chain)
    if actions == (Action.TASK_RELEASE,):  # assigned to nobody (the nurse walker released its claim): 409, not 403
        return policy.allows(who, Action.TASK_RELEASE)
    return all(policy.allows(who, action) for action in actions)


def _refused(key: str, answer: httpx.Response) -> bool:
    if answer.status_code in (401, 403):
        return True
    location = answer.headers.get("location", "")
    if answer.status_code == 303 and location.startswith("/web/sign-in"):
        return True
    return key == "GET /web/" and answer.status_code == 303  # the worklist sends other roles to their own page


def _csrf(client: httpx.Client, page: str) -> str:
    """The CSRF token of the form on `page` (the client's session's)."""
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def _sign_in(client: httpx.Client, role: Role) -> None:
    data = {"csrf": _csrf(client, "/web/sign-in"), "name": person_name(role), "password": password(role)}
    assert client.post("/web/sign-in", data=data).status_code == 303


def test_every_route_answers_every_role_and_anonymous_as_the_table_says(site: Site) -> None:
    nurse_task = site.tasks(code="notify-social-worker")[0]
    flag = site.flags()[0]["id"]
    site.service.ingest_one(RawItem(1, "{}", {}), origin="walk")  # R1, for the data-quality page
    wrong: list[str] = []
    callers: list[Role | None] = [None, *Role]
    for caller in callers:
        with httpx.Client(base_url=site.url, timeout=20, follow_redirects=False) as client:
            if caller is Role.CLINIC_SYSTEM:
                client.headers["X-API-Key"] = site.keys["walker"]  # bound to pas and context
            elif caller is not None:
                client.auth = (person_name(caller), password(caller))
                _sign_in(client, caller)
            # A person's token from the password page (every person may open it: a clinical safety officer reads no
            # child's record); anyone else's from the sign-in page, for the pages anyone may post (acknowledgement).
            page = "/web/password" if caller not in (None, Role.CLINIC_SYSTEM) else "/web/sign-in"
            csrf = _csrf(client, page)
            for key in ENTRY_POINTS:
                if key.startswith("cli ") or key in ("POST /web/sign-out", "POST /web/sign-in"):
                    continue  # commands are walked below; signing in and out changes the session
                method, path = key.split(" ", 1)
                actions = [a for a in ("ack", "complete", "cancel") if "/tasks/{task_id}/{action}" in key] or ["ack"]
                for action in actions[:1] if "/web/" in key else actions:
                    request = _body(key)
                    if csrf and "data" in request:
                        request["data"] = {**request["data"], "csrf": csrf}
                    url = _fill(path, nurse_task["id"], flag, action)
                    answer = client.request(method, url, **request)
                    expected = _allowed(key, caller, nurse_task)
                    if _refused(key, answer) == expected:
                        who = caller.value if caller else "anonymous"
                        wrong.append(f"{who} {method} {url}: {answer.status_code} (table: {expected})")
    assert wrong == []


@pytest.fixture
def cli(site: Site, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """The real command line, in this process (a process each would take a second), on the site's database.

    Its commands open the database they are told of; here they all share the site's engine, which the site
    disposes of (an engine per command would leave PostgreSQL connections open in this process).
    """
    monkeypatch.setenv("WNB_DATABASE_URL", site.service.db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("WNB_RULES_DIR", str(ROOT / "rules" / "default"))
    for name in ("accounts", "audit", "common", "database", "queues", "rules", "serving", "work"):
        module = sys.modules[f"wnb.cli.{name}"]
        monkeypatch.setattr(module, "open_database", lambda *args, **kwargs: site.service.db)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args))


def test_cli_commands_that_act_as_a_person_answer_every_role_as_the_table_says(
    site: Site, cli: Callable[..., Result]
) -> None:
    task = site.tasks(code="safeguarding-review")[0]  # named-nurse's
    flag = site.flags()[0]["id"]
    commands = {
        "cli task ack": ["task", "ack", task["id"]],
        "cli task complete": ["task", "complete", task["id"], "--note", "walked"],
        "cli task cancel": ["task", "cancel", task["id"], "--note", "walked"],
        "cli task claim": ["task", "claim", task["id"]],
        "cli task assign": ["task", "assign", task["id"], "--to", person_name(Role.NAMED_NURSE)],
        "cli task release": ["task", "release", task["id"]],
        "cli task send": ["task", "send", task["id"], "--channel", "letter"],  # it shares nothing: 1, not refused
        "cli task letter-sent": ["task", "letter-sent", "M999"],  # no such letter: 1, not refused
        "cli flag resolve": ["flag", "resolve", flag, "--reason", "walked"],
        "cli keys list": ["keys", "list"],
        "cli users list": ["users", "list"],
    }
    wrong = []
    for role in PEOPLE:
        for key, args in commands.items():
            result = cli(*args, "--by", person_name(role))
            refused = result.exit_code == 1 and "may not" in result.output
            assert result.exit_code == 0 or "Traceback" not in result.output
            expected = _allowed(key, role, task)
            if refused == expected:
                wrong.append(f"{role.value} {key}: exit {result.exit_code} {result.output.strip()[:200]}")
    assert wrong == []


def test_cli_by_must_name_an_enabled_account(site: Site, cli: Callable[..., Result]) -> None:
    task = site.tasks(code="notify-social-worker")[0]["id"]
    unknown = cli("task", "ack", task, "--by", "nobody.at.all")
    assert unknown.exit_code == 1 and "no account has that name" in unknown.output
    disable_user(site.service.db, person_name(Role.SAFEGUARDING_NURSE))
    disabled = cli("task", "ack", task, "--by", person_name(Role.SAFEGUARDING_NURSE))
    assert disabled.exit_code == 1 and "disabled" in disabled.output
    assert site.tasks(code="notify-social-worker")[0]["status"] == "requested"
    done = cli("task", "ack", task, "--by", person_name(Role.SAFEGUARDING_LEAD))
    assert done.exit_code == 0, done.output
    (record,) = site.audit("task_acknowledged")
    assert record["actor"] == f"user:{person_name(Role.SAFEGUARDING_LEAD)}"
    assert record["payload"]["via"] == "cli"


# ---- the attacks of issue 11, each refused ----


def test_a_clinician_may_not_complete_a_named_nurses_task_anywhere(site: Site) -> None:
    task = site.tasks(code="safeguarding-review")[0]
    assert task["owner_role"] == "named-nurse"
    with site.person(Role.CLINICIAN) as client:
        answer = client.post(f"/v1/tasks/{task['id']}/complete", json={"note": "not mine"})
    assert answer.status_code == 403 and "named-nurse" in answer.json()["reason"]
    with httpx.Client(base_url=site.url, timeout=20) as browser:
        _sign_in(browser, Role.CLINICIAN)
        page = browser.post(f"/web/tasks/{task['id']}/complete", data={"csrf": _csrf(browser, "/web/password")})
    assert page.status_code == 403 and "named-nurse" in page.text
    with pytest.raises(Forbidden):
        site.service.act_on_task(task["id"], "complete", Principal(Kind.USER, "dr.who", Role.CLINICIAN))
    assert site.tasks(code="safeguarding-review")[0]["status"] == "requested"
    with site.person(Role.NAMED_NURSE) as client:
        assert client.post(f"/v1/tasks/{task['id']}/complete", json={"note": "done"}).status_code == 200


def test_a_task_may_be_acted_on_by_the_role_that_first_owned_it_after_escalation(site: Site) -> None:
    task = site.tasks(code="notify-social-worker")[0]
    with site.service.db.begin() as connection:
        connection.execute(
            update(repo.tasks).where(repo.tasks.c.id == int(task["id"][1:])).values(owner_role="named-nurse")
        )
    with site.person(Role.SAFEGUARDING_NURSE) as client:
        assert client.post(f"/v1/tasks/{task['id']}/ack", json={}).status_code == 200
    with site.person(Role.BOOKING_TEAM) as client:
        assert client.post(f"/v1/tasks/{task['id']}/complete", json={}).status_code == 403


def test_a_booking_team_key_may_not_cancel_notify_social_worker(site: Site) -> None:
    task = site.tasks(code="notify-social-worker")[0]
    with site.key("booking") as client:
        answer = client.post(f"/v1/tasks/{task['id']}/cancel", json={"note": "not needed"})
    assert answer.status_code == 403
    assert site.tasks(code="notify-social-worker")[0]["status"] == "requested"
    booking_task = site.tasks(code="reoffer-appointment")[0]
    with site.key("booking") as client:  # its own role's task it may (audited as the key)
        assert client.post(f"/v1/tasks/{booking_task['id']}/ack", json={}).status_code == 200
    assert site.audit("task_acknowledged")[-1]["actor"] == "client:booking-desk"


def test_the_booking_team_may_not_resolve_a_red_flag(site: Site) -> None:
    flag = site.flags()[0]
    assert flag["level"] == "red"
    with site.person(Role.BOOKING_TEAM) as client:
        answer = client.post(f"/v1/flags/{flag['id']}/resolve", json={"reason": "seen"})
    assert answer.status_code == 403
    with site.key("booking") as client:
        assert client.post(f"/v1/flags/{flag['id']}/resolve", json={"reason": "seen"}).status_code == 403
    assert site.flags()[0]["status"] == "active"


def test_a_key_may_not_post_entered_in_error_for_another_systems_appointment(site: Site) -> None:
    before = {task["id"]: task["status"] for task in site.tasks()}
    withdrawal = event("e2", source="pas", appointment_id="a-e1", attendance="entered-in-error")
    withdrawal["recorded_at"] = "2026-03-02T12:00:00+00:00"
    with site.key("ehr") as client:
        answer = client.post("/v1/attendance-events", json=withdrawal)
        batch = client.post("/v1/attendance-events", json={"events": [withdrawal]})
    assert answer.status_code == 403 and answer.json()["field"] == "source"
    assert "may not write events for source 'pas'" in answer.json()["reason"]
    assert batch.status_code == 200 and batch.json()["results"][0]["status"] == "rejected"
    assert {task["id"]: task["status"] for task in site.tasks()} == before  # the five tasks stay open
    kept = site.rejects()  # the single event and the batch's (their texts differ)
    assert len(kept) == 2 and all(reject["source"] == "pas" and "ehr" in reject["reason"] for reject in kept)
    with site.key("pas") as client:  # the PAS may correct its own appointment
        assert client.post("/v1/attendance-events", json=withdrawal).status_code == 200
    assert all(task["status"] == "cancelled" for task in site.tasks())


def test_a_source_that_is_not_text_is_refused_by_the_binding_and_the_batch_still_answers_each_item(site: Site) -> None:
    odd = event("e9", source=["pas"])  # found by the fuzz test: a list was looked up among the bound sources
    with site.key("pas") as client:
        batch = client.post("/v1/attendance-events", json={"events": [odd, event("e10")]})
    assert batch.status_code == 200
    assert [result["status"] for result in batch.json()["results"]] == ["rejected", "accepted"]


def test_an_events_key_may_not_rewrite_a_childs_safeguarding_context(site: Site) -> None:
    off_the_plan = {"date_of_birth": "2019-05-01", "statuses": []}
    with site.key("pas") as client:
        answer = client.put(f"/v1/people/{CHILD}/context", json=off_the_plan)
    assert answer.status_code == 403 and "wnb keys bind pas --context" in answer.json()["reason"]
    assert any("context" in reject["reason"] for reject in site.rejects())  # kept, with the reason
    with site.key("pas") as client:  # WNB-01 still fires for the next miss
        client.post("/v1/attendance-events", json=event("e3", recorded_at="2026-03-03T11:00:00+00:00"))
    assert len(site.tasks(code="notify-social-worker")) == 1  # still open from e1: not silenced, not doubled
    assert site.flags()[0]["code"] == "safeguarding-plan-wnb" and site.flags()[0]["status"] == "active"
    with site.key("register") as client:  # the register's key is bound for context
        assert client.put(f"/v1/people/{CHILD}/context", json=off_the_plan).status_code == 200
        assert client.post("/v1/attendance-events", json=event("e4")).status_code == 403  # and for no source


def test_a_fhir_appointment_is_held_to_its_identifier_system_exactly(site: Site) -> None:
    def appointment(system: str) -> dict[str, Any]:
        return {
            "resourceType": "Appointment",
            "identifier": [{"system": system, "value": "A-1"}],
            "status": "noshow",
            "start": "2026-03-02T10:00:00+00:00",
            "serviceType": [{"coding": [{"code": "community-paediatrics"}]}],
            "participant": [
                {
                    "actor": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": CHILD}},
                    "status": "accepted",
                }
            ],
        }

    with site.key("fhir") as client:
        near = client.post("/fhir/Appointment", json=appointment("https://pas.example.nhs.uk/appointment/"))
        bundle = client.post(
            "/fhir",
            json={"resourceType": "Bundle", "type": "batch", "entry": [{"resource": appointment("pas")}]},
        )
        exact = client.post("/fhir/Appointment", json=appointment("https://pas.example.nhs.uk/appointment"))
    assert near.status_code == 403 and near.json()["resourceType"] == "OperationOutcome"
    assert bundle.json()["entry"][0]["response"]["status"] == "403 Forbidden"
    assert exact.status_code == 201, exact.text
    assert len(site.rejects()) == 2


def test_an_hl7_message_over_http_is_held_to_its_sending_facility(site: Site) -> None:
    message = siu(control_id="MSG7").encode()  # MSH-4: RXX-PAS
    with site.key("ehr") as client:
        refused = client.post("/v1/hl7", content=message, headers={"Content-Type": "application/hl7-v2"})
    assert refused.status_code == 403 and "MSA|AR|MSG7" in refused.text
    assert any(reject["source"] == "RXX-PAS" and "ehr" in reject["reason"] for reject in site.rejects())
    with site.key("hl7") as client:
        accepted = client.post("/v1/hl7", content=message, headers={"Content-Type": "application/hl7-v2"})
    assert accepted.status_code == 200 and "MSA|AA|MSG7" in accepted.text


def test_an_admin_may_post_for_any_source_and_is_audited_as_such(site: Site) -> None:
    with site.key("ops") as client:
        answer = client.post("/v1/attendance-events", json=event("e9", source="community-ehr"))
    assert answer.status_code == 200
    (record,) = site.audit("admin_posted_for_source")
    assert record["actor"] == "client:ops" and record["subject"] == ["community-ehr"]


def test_a_key_made_before_bindings_writes_nothing_until_bound(site: Site) -> None:
    with site.service.db.begin() as connection:  # as migration 0004 leaves a key that existed before it
        keys = ApiKeyRow.__table__  # type: ignore[attr-defined]
        connection.execute(update(keys).where(keys.c.name == "pas").values(sources=None))
    with site.key("pas") as client:
        refused = client.post("/v1/attendance-events", json=event("e5"))
        reading = client.get("/v1/flags")
    assert refused.status_code == 403 and "wnb keys bind pas" in refused.json()["reason"]
    assert reading.status_code == 403  # a clinic system never reads children's records
    bind_api_key(site.service.db, "pas", ["pas"])
    with site.key("pas") as client:
        assert client.post("/v1/attendance-events", json=event("e5")).status_code == 200
    assert site.audit("api_key_bound")[-1]["payload"]["sources"] == ["pas"]


def test_a_clinic_key_must_be_bound_when_it_is_made(site: Site, cli: Callable[..., Result]) -> None:
    with pytest.raises(WnbError, match="--source"):
        create_api_key(site.service.db, "clinic-system", "unbound")
    unbound = cli("keys", "create", "--role", "clinic-system", "--name", "south")
    assert unbound.exit_code == 1 and "--source" in unbound.output
    result = cli("keys", "create", "--role", "clinic-system", "--name", "north", "--source", "pas", "--source", "ehr")
    assert result.exit_code == 0, result.output
    bound = cli("keys", "bind", "north", "--source", "pas", "--context", "--by", person_name(Role.ADMIN))
    assert bound.exit_code == 0, bound.output
    not_admin = cli("keys", "bind", "north", "--source", "ehr", "--by", person_name(Role.SAFEGUARDING_LEAD))
    assert not_admin.exit_code == 1 and "may not" in not_admin.output
    north = next(item for item in list_api_keys(site.service.db) if item["name"] == "north")
    assert north["sources"] == ["pas"] and north["context"] is True
    assert site.audit("api_key_bound")[-1]["actor"] == f"user:{person_name(Role.ADMIN)}"


def test_a_person_by_password_is_audited_as_a_user_and_a_key_as_a_client(site: Site) -> None:
    create_user(site.service.db, "ops", "admin", "a person named like the key")
    with httpx.Client(base_url=site.url, auth=("ops", "a person named like the key"), timeout=20) as client:
        assert client.get(f"/v1/people/{CHILD}/timeline").status_code == 200
    with site.key("ops") as client:
        assert client.get(f"/v1/people/{CHILD}/timeline").status_code == 200
    assert [record["actor"] for record in site.audit("record_read")] == ["user:ops", "client:ops"]
