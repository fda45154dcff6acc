"""`wnb recipients import FILE` (NDJSON or CSV) and `wnb recipients list [--json]` through the installed console
script, on a real SQLite file (issue 18 part 1)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from tests.cli.test_cli import run_in
from wnb.database import open_database
from wnb.store import audit

CSV_DIRECTORY = (
    "ods_code,name,email,endpoint\n"
    "y00001,Riverside Surgery,riverside.surgery@nhs.net,https://fhir.riverside.example/R4\n"
    "B86001,Northshire Children's Services,duty@northshire.gov.uk,\n"
)


def test_a_csv_directory_imports_and_lists_as_json_by_ods_code(tmp_path: Path) -> None:
    (tmp_path / "directory.csv").write_text(CSV_DIRECTORY)
    imported = run_in(tmp_path, "recipients", "import", "directory.csv")
    assert imported.code == 0, imported.err
    assert "2 created, 0 updated" in imported.out
    listed = run_in(tmp_path, "recipients", "list", "--json")
    assert json.loads(listed.out) == [
        {
            "ods_code": "B86001",
            "name": "Northshire Children's Services",
            "email": "duty@northshire.gov.uk",
            "endpoint": None,
        },
        {
            "ods_code": "Y00001",
            "name": "Riverside Surgery",
            "email": "riverside.surgery@nhs.net",
            "endpoint": "https://fhir.riverside.example/R4",
        },
    ]
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    with db.connect() as connection:
        (record,) = connection.execute(select(audit._audit).where(audit._audit.c.action == "recipients_imported"))
    db.dispose()
    assert record.actor == "cli" and record.subject == ["B86001", "Y00001"]


def test_an_ndjson_directory_replaces_an_organisation_and_the_table_shows_it(tmp_path: Path) -> None:
    (tmp_path / "directory.csv").write_text(CSV_DIRECTORY)
    assert run_in(tmp_path, "recipients", "import", "directory.csv").code == 0
    moved = {"ods_code": "Y00001", "name": "Riverside Surgery", "email": "sg.riverside@nhs.net"}
    (tmp_path / "update.ndjson").write_text(json.dumps(moved) + "\n")
    updated = run_in(tmp_path, "recipients", "import", "update.ndjson")
    assert updated.code == 0 and "0 created, 1 updated" in updated.out
    table = run_in(tmp_path, "recipients", "list", columns=200).out
    assert "2 recipients" in table and "sg.riverside@nhs.net" in table and "Riverside Surgery" in table


def test_a_file_with_a_bad_row_imports_nothing_and_names_each_bad_line(tmp_path: Path) -> None:
    lines = [
        {"ods_code": "Y00001", "name": "Riverside Surgery"},
        {"ods_code": "x", "name": "Too short"},
        {"ods_code": "B86001", "name": "Northshire", "endpoint": "http://fhir.northshire.example"},
    ]
    (tmp_path / "bad.ndjson").write_text("".join(json.dumps(line) + "\n" for line in lines))
    refused = run_in(tmp_path, "recipients", "import", "bad.ndjson")
    assert refused.code == 1
    assert "line 2: ods_code" in refused.err and "line 3: endpoint" in refused.err and "nothing imported" in refused.err
    assert json.loads(run_in(tmp_path, "recipients", "list", "--json").out) == []
