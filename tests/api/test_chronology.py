"""A child's chronology on the API, the pages and the command line (issue 18 part 4): one row per outcome,
flag, task and action, in time order; each export an audited read; CSV cells that would be formulas kept as
text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from tests.api.test_api import NURSE, Api, api  # noqa: F401  (the real uvicorn server fixture)
from tests.conftest import ROOT
from tests.factories import CHILD, event, run_wnb
from wnb.store import audit, listing
from wnb.store.accounts import create_user

STORES = ("sqlite", "postgres")
CLINICIAN = ("clin.ash", "a clinician's long passphrase")
FORMULA_NOTE = '=HYPERLINK("http://evil.example","click")'


def _missed_and_worked(api: Api) -> None:  # noqa: F811
    """The child not brought to community paediatrics, and the clinician's task done with a note."""
    create_user(api.service.db, CLINICIAN[0], "clinician", CLINICIAN[1])
    with api.clinic() as client:
        assert client.post("/v1/attendance-events", json={"events": [event("e1")]}).status_code == 200
    task = next(task for task in api.tasks() if task["owner_role"] == "clinician")
    with api.person(CLINICIAN) as clinician:
        answer = clinician.post(f"/v1/tasks/{task['id']}/complete", json={"note": FORMULA_NOTE})
        assert answer.status_code == 200, answer.text


def _reads(api: Api) -> list[dict[str, object]]:  # noqa: F811
    with api.service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == "record_read").order_by(audit._audit.c.seq)
        return [row._mapping["payload"] for row in connection.execute(query)]


def test_the_chronology_lists_the_outcome_and_the_action_taken_in_time_order(api: Api) -> None:  # noqa: F811
    _missed_and_worked(api)
    with api.person() as nurse:
        answer = nurse.get(f"/v1/people/{CHILD}/chronology")
    assert answer.status_code == 200, answer.text
    entries = answer.json()["entries"]
    assert entries == sorted(entries, key=lambda entry: entry["at"])
    assert entries[0]["event"].startswith("not brought (did not attend); appointment a-e1 from pas")
    done = next(entry for entry in entries if entry["event"].startswith("task done"))
    assert (done["action"], done["by"]) == (FORMULA_NOTE, f"user:{CLINICIAN[0]}")


def test_the_chronology_as_csv_keeps_formula_cells_as_text_and_its_export_is_audited(api: Api) -> None:  # noqa: F811
    _missed_and_worked(api)
    with api.person() as nurse:
        answer = nurse.get(f"/v1/people/{CHILD}/chronology", params={"format": "csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["date", "agency or service", "event", "significance", "action taken", "by whom"]
    assert any(row[4] == "'" + FORMULA_NOTE for row in rows[1:])
    assert {"view": "chronology", "format": "csv"} in [dict(payload) for payload in _reads(api)]


def test_a_clinic_system_may_not_read_a_chronology(api: Api) -> None:  # noqa: F811
    with api.clinic() as client:
        assert client.get(f"/v1/people/{CHILD}/chronology").status_code == 403


def test_wnb_chronology_writes_the_csv_and_html_for_a_named_reader(api: Api, tmp_path: Path) -> None:  # noqa: F811
    _missed_and_worked(api)
    database = api.service.db.url.render_as_string(hide_password=False)
    environment = {"WNB_DATABASE_URL": database, "WNB_RULES_DIR": str(ROOT / "rules/default")}
    printed = run_wnb(tmp_path, "chronology", "999 000 0018", "--by", NURSE[0], env=environment)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("date,agency or service,event,significance,action taken,by whom\n")
    page = tmp_path / "chronology.html"
    written = run_wnb(
        tmp_path, "chronology", CHILD, "--by", NURSE[0], "--format", "html", "--out", str(page), env=environment
    )
    assert written.returncode == 0, written.stderr
    assert "Multi-agency chronology: NHS 9990000018" in page.read_text(encoding="utf-8")
    unknown = run_wnb(tmp_path, "chronology", CHILD, "--by", "nobody", env=environment)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    with api.service.db.connect() as connection:
        assert listing.tasks(connection, include_closed=True)  # the CLI read changed nothing
