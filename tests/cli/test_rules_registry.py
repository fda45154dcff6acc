"""The ruleset registry's commands (issue 15): propose, approve, reject, activate, history, diff, and each refusal,
through the real command line in this process on a real SQLite file.

Proposing runs the default ruleset's sixty scenarios and a backtest (seconds each), so one module fixture makes
a registry with two proposals against the first version and each test works on its own copy of that file.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from tests.conftest import DEFAULT_RULES
from wnb.cli.main import app
from wnb.database import open_database
from wnb.store import audit
from wnb.store.accounts import create_user

PEOPLE = {
    "gov.one": "governance",
    "cso.one": "clinical-safety-officer",
    "cso.two": "clinical-safety-officer",
    "lead.one": "safeguarding-lead",
    "admin.one": "admin",
}


def password(name: str) -> str:
    return f"{name} long passphrase"


def candidate(folder: Path, comment: str) -> Path:
    """The default ruleset with a comment added: another version, every check and scenario still passing."""
    shutil.copytree(DEFAULT_RULES, folder)
    with (folder / "ruleset.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"# {comment}\n")
    return folder


@dataclass
class Registry:
    folder: Path
    first: str  # WNB_RULES_DIR's version, registered on first start
    a: str  # proposed by gov.one against it
    b: str  # proposed by cso.one against it

    @property
    def url(self) -> str:
        return f"sqlite:///{self.folder / 'wnb.db'}"


Cli = Callable[..., Result]


def _run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"})


def history() -> list[dict[str, Any]]:
    result = _run("rules", "history", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def status_of(version: str) -> str:
    return next(row["status"] for row in history() if row["version"] == version)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    folder = tmp_path_factory.mktemp("registry")
    url = f"sqlite:///{folder / 'wnb.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WNB_DATABASE_URL", url)
        env.setenv("WNB_RULES_DIR", str(DEFAULT_RULES))
        env.delenv("WNB_MODE", raising=False)
        db = open_database(url)
        for name, role in PEOPLE.items():
            create_user(db, name, role, password(name))
        db.dispose()
        a = _run("rules", "propose", str(candidate(folder / "a", "A")), "--by", "gov.one", "--note", "A", "--json")
        assert a.exit_code == 0, a.output
        b = _run("rules", "propose", str(candidate(folder / "b", "B")), "--by", "cso.one", "--json")
        assert b.exit_code == 0, b.output
        listed = history()
    first = next(row["version"] for row in listed if row["proposed_by"] == "wnb")
    return Registry(folder, first, json.loads(a.stdout)[0]["version"], json.loads(b.stdout)[0]["version"])


@pytest.fixture
def registry(made: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    for name in ("wnb.db", "wnb.db-wal", "wnb.db-shm"):  # the commands' engines stay open: the WAL holds rows
        if (made.folder / name).exists():
            shutil.copy(made.folder / name, tmp_path / name)
    monkeypatch.setenv("WNB_DATABASE_URL", f"sqlite:///{tmp_path / 'wnb.db'}")
    monkeypatch.setenv("WNB_RULES_DIR", str(DEFAULT_RULES))
    monkeypatch.delenv("WNB_MODE", raising=False)
    return Registry(tmp_path, made.first, made.a, made.b)


def approve(version: str, by: str, secret: str | None = None, verb: str = "approve") -> Result:
    given = password(by) if secret is None else secret
    return _run("rules", verb, version[:10], "--by", by, "--reason", "checked", "--password-stdin", input=given + "\n")


def actions(registry: Registry) -> list[dict[str, Any]]:
    db = open_database(registry.url)
    with db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action.like("ruleset_%")).order_by(audit._audit.c.seq)
        rows = [dict(row._mapping) for row in connection.execute(query)]
    db.dispose()
    return rows


def test_first_start_registers_the_rules_dir_as_active_not_yet_approved(registry: Registry) -> None:
    first = next(row for row in history() if row["version"] == registry.first)
    assert (first["status"], first["approved_by"], first["approved"]) == ("active", None, False)
    table = _run("rules", "history")
    assert "active, not yet approved" in " ".join(table.stdout.split())


def test_a_proposal_stores_its_evidence_against_the_active_version(registry: Registry) -> None:
    a = next(row for row in history() if row["version"] == registry.a)
    assert (a["status"], a["proposed_by"], a["note"], a["compared_against"]) == (
        "proposed",
        "gov.one",
        "A",
        registry.first,
    )
    assert [row["action"] for row in actions(registry)][:3] == [
        "ruleset_registered",
        "ruleset_proposed",
        "ruleset_proposed",
    ]


def test_evaluations_use_the_active_version_from_the_registry(registry: Registry, tmp_path: Path) -> None:
    assert _run("rules", "activate", registry.a[:8], "--by", "admin.one").exit_code == 0
    feed = tmp_path / "feed.ndjson"
    row = {
        "source": "pas",
        "event_id": "e1",
        "nhs_number": "9990000018",
        "service": "community-paediatrics",
        "appointment_id": "A1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
    }
    feed.write_text(json.dumps(row) + "\n", encoding="utf-8")
    ingested = _run("ingest", str(feed))
    assert ingested.exit_code == 0 and "1 accepted" in ingested.stdout, ingested.output
    db = open_database(registry.url)
    with db.connect() as connection:
        used = (
            connection.execute(select(audit._audit.c.ruleset_version).where(audit._audit.c.action == "evaluation"))
            .scalars()
            .all()
        )
    db.dispose()
    assert used and set(used) == {registry.a}


def test_a_safety_officer_approves_another_persons_proposal(registry: Registry) -> None:
    result = approve(registry.a, "cso.one")
    assert result.exit_code == 0, result.output
    a = next(row for row in history() if row["version"] == registry.a)
    assert (a["status"], a["approved_by"], a["reason"]) == ("approved", "cso.one", "checked")
    assert actions(registry)[-1]["action"] == "ruleset_approved"
    assert actions(registry)[-1]["actor"] == "user:cso.one"


def test_the_proposer_may_not_approve_their_own_proposal(registry: Registry) -> None:
    result = approve(registry.b, "cso.one")
    assert result.exit_code == 1 and "cso.one proposed version" in result.output
    assert status_of(registry.b) == "proposed"


def test_a_person_who_is_not_a_clinical_safety_officer_may_not_approve(registry: Registry) -> None:
    result = approve(registry.a, "lead.one")
    assert result.exit_code == 1 and "allowed: clinical-safety-officer" in result.output
    assert status_of(registry.a) == "proposed"


def test_a_wrong_password_is_refused_and_counted_as_a_failed_sign_in(registry: Registry) -> None:
    result = approve(registry.a, "cso.two", secret="not the password")
    assert result.exit_code == 1 and "wrong user name or password" in result.output
    assert status_of(registry.a) == "proposed"


def test_a_rejection_records_who_and_why(registry: Registry) -> None:
    result = approve(registry.a, "cso.two", verb="reject")
    assert result.exit_code == 0, result.output
    a = next(row for row in history() if row["version"] == registry.a)
    assert (a["status"], a["rejected_by"], a["reason"]) == ("rejected", "cso.two", "checked")
    assert _run("rules", "activate", registry.a[:8], "--by", "admin.one").exit_code == 1


def test_production_refuses_to_activate_an_unapproved_version(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WNB_MODE", "production")
    result = _run("rules", "activate", registry.a[:8], "--by", "admin.one")
    assert result.exit_code == 1 and "not approved" in result.output
    assert approve(registry.a, "cso.one").exit_code == 0
    result = _run("rules", "activate", registry.a[:8], "--by", "admin.one")
    assert result.exit_code == 0, result.output
    assert (status_of(registry.a), status_of(registry.first)) == ("active", "retired")


def test_only_an_admin_activates(registry: Registry) -> None:
    result = _run("rules", "activate", registry.a[:8], "--by", "gov.one")
    assert result.exit_code == 1 and "allowed: admin" in result.output


def test_activation_is_refused_when_the_active_version_moved_since_the_evidence(registry: Registry) -> None:
    assert _run("rules", "activate", registry.a[:8], "--by", "admin.one").exit_code == 0
    result = _run("rules", "activate", registry.b[:8], "--by", "admin.one")
    assert result.exit_code == 1 and "propose it again" in result.output
    assert status_of(registry.b) == "proposed"


def test_a_retired_version_activated_again_is_a_rollback_audited_and_marked_for_review(registry: Registry) -> None:
    assert _run("rules", "activate", registry.a[:8], "--by", "admin.one").exit_code == 0
    result = _run("rules", "activate", registry.first[:8], "--by", "admin.one")
    assert result.exit_code == 0 and "rollback" in result.output
    first = next(row for row in history() if row["version"] == registry.first)
    assert (first["status"], first["rollback"]) == ("active", True)
    assert status_of(registry.a) == "retired"
    activated = [row for row in actions(registry) if row["action"] == "ruleset_activated"]
    assert activated[-1]["payload"]["rollback"] is True and activated[-1]["actor"] == "user:admin.one"


def test_a_future_time_schedules_the_version_until_then(registry: Registry) -> None:
    result = _run("rules", "activate", registry.a[:8], "--by", "admin.one", "--at", "2999-01-01T09:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert (status_of(registry.a), status_of(registry.first)) == ("scheduled", "active")


def test_diff_shows_the_changed_text_of_two_versions(registry: Registry) -> None:
    result = _run("rules", "diff", registry.first[:8], registry.a[:8])
    assert result.exit_code == 0, result.output
    assert f"+++ {registry.a[:12]}/ruleset.yaml" in result.stdout and "+# A" in result.stdout


def test_a_rule_naming_an_unknown_hazard_is_refused_at_propose(registry: Registry, tmp_path: Path) -> None:
    folder = candidate(tmp_path / "bad", "bad")
    rule = folder / "WNB-01.yaml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("hazards: [H-09]", "hazards: [H-99]"), encoding="utf-8")
    result = _run("rules", "propose", str(folder), "--by", "gov.one")
    assert result.exit_code == 1 and "H-99" in result.output
    assert len(history()) == 3


def test_a_proposal_whose_scenarios_fail_is_refused_naming_them(registry: Registry, tmp_path: Path) -> None:
    folder = candidate(tmp_path / "failing", "failing")
    scenario = folder / "scenarios" / "appointment-date-is-london-date.yaml"
    text = scenario.read_text(encoding="utf-8").replace(
        "code: lead-professional-wnb, level: amber", "code: lead-professional-wnb, level: red"
    )
    scenario.write_text(text, encoding="utf-8")
    result = _run("rules", "propose", str(folder), "--by", "gov.one")
    assert result.exit_code == 1
    assert "1 of 60 scenarios fail" in result.output and "appointment-date-is-london-date.yaml" in result.output
    assert len(history()) == 3


# ---- the safety case report ----


def test_a_report_made_again_is_the_same_bytes_with_the_hash_parameters_hazards_and_scenarios(
    registry: Registry, tmp_path: Path
) -> None:
    assert approve(registry.a, "cso.one").exit_code == 0
    first, again = tmp_path / "first.html", tmp_path / "again.html"
    made = _run("rules", "report", registry.a[:10], "--out", str(first))
    assert made.exit_code == 0, made.output
    remade = _run("rules", "report", registry.a, "--out", str(again))
    assert remade.exit_code == 0, remade.output
    assert first.read_bytes() == again.read_bytes()
    assert "the same bytes as stored before" in remade.stdout
    html = first.read_text(encoding="utf-8")
    assert f'<code id="config-hash">{registry.a}</code>' in html
    assert "<code>parameters.repeat_misses</code></td><td>2</td>" in html
    assert 'id="hazard-log-version"' in html and 'id="hazard-H-01"' in html
    assert re.search(r"<p>(\d+) of \1 scenarios passed under this version", html)
    assert "wnb-06-repeat-in-service.yaml" in html
    assert "Approved by <strong>cso.one</strong>" in html
    assert 'id="backtest-rules"' in html and registry.first in html  # against the version it replaces
    assert "<script" not in html and "@media print" in html


def test_a_report_is_stored_once_with_its_hash_and_its_making_audited(registry: Registry, tmp_path: Path) -> None:
    import hashlib

    out = tmp_path / "report.html"
    for _ in range(2):
        assert _run("rules", "report", registry.b, "--out", str(out)).exit_code == 0
    db = open_database(registry.url)
    try:
        from wnb.store import rulesets

        (stored,) = rulesets.reports_of(db, registry.b)
        with db.connect() as connection:
            records = connection.execute(select(audit._audit).where(audit._audit.c.action == "ruleset_report_made"))
            made = [row.payload for row in records]
    finally:
        db.dispose()
    assert stored["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert made == [{"version": registry.b, "report_sha256": stored["sha256"]}]


def test_simulate_takes_a_version_of_the_registry(registry: Registry) -> None:
    result = _run("rules", "simulate", "--version", registry.a[:8], "--from", "2026-01-01", "--to", "2026-01-31")
    assert result.exit_code == 0, result.output
    assert f"version {registry.a[:12]}" in result.stdout
    local = _run("rules", "simulate", "--rules", str(DEFAULT_RULES), "--from", "2026-01-01", "--to", "2026-01-31")
    assert local.exit_code == 0 and str(DEFAULT_RULES) in local.stdout  # a local candidate directory still works
    both = _run("rules", "simulate", "--from", "2026-01-01", "--to", "2026-01-31")
    assert both.exit_code != 0 and "--rules DIR or as --version" in both.output
