"""Ingestion is total, as a property (issue 12): random bytes, random JSON, valid items with one field made
random, and every kind of bad input of bench/bad_inputs.py (as explicit examples) go to every reader and to
the HTTP and MLLP endpoints. Whatever comes in: nothing crashes or answers a server error, every item is
stored or rejected with a reason, and a rejected input changes no table but events, rejects and audit.

WNB_INGEST_EXAMPLES (default 500) sets the generated examples per entry point on SQLite; PostgreSQL runs a fifth
as many (at least 50), plus every explicit example: what only PostgreSQL refuses (U+0000, a date it cannot
hold) is in the explicit examples, and its half keeps the run short. One database, server or listener per
entry point and store serves all its examples.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import SQLModel

from tests.conftest import ROOT
from tests.factories import pas_clinic_key, running_listener
from tests.server import serving
from wnb.api import create_app
from wnb.ingest import read_file
from wnb.ingest.mllp import Listener
from wnb.service import Service

STORES = ("sqlite", "postgres")
EXAMPLES = int(os.environ.get("WNB_INGEST_EXAMPLES", "500"))
EXAMPLES_ON = {"sqlite": EXAMPLES, "postgresql": max(50, EXAMPLES // 5)}
# What a rejected input may change: the events table (a stale or duplicate event is no reject), the data-quality
# queue and the audit chain (its records and its head).
MAY_CHANGE = frozenset({"event", "reject", "audit", "audit_head", "alembic_version"})
STORED = ("accepted", "superseded", "stale", "duplicate")


def _catalogue() -> Any:
    spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "bench" / "bad_inputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BAD = _catalogue()
SETTINGS = settings(
    max_examples=EXAMPLES,  # on SQLite; `fuzz` sets PostgreSQL's
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one database per entry point, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# ---- strategies ----

SPECIAL_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "\udcff",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "1899-12-31",
        "2101-01-01T00:00:00+00:00",
        "2026-02-30",
        "9" * 40,
        "",
        " ",
        "x" * 300,
    ]
)
TEXT = st.one_of(st.text(max_size=30), SPECIAL_TEXT)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**60), st.floats(), TEXT
)
JSON_VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # a lone surrogate is written as an escape (\ud800), as JSON allows


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid item with a field or two replaced, removed or added."""
    item = dict(base)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from([*item, "extra"]))
        if draw(st.booleans()) and key in item:
            del item[key]
        else:
            item[key] = draw(JSON_VALUE)
    return item


IDS = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=8)


def json_texts(base: Callable[[str], dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """JSON texts: random JSON, a valid item mutated, or a valid one."""
    return st.one_of(
        JSON_VALUE.map(_dumps),
        IDS.flatmap(lambda i: mutated(base(i))).map(_dumps),
        IDS.map(lambda i: _dumps(base(i))),
    )


def json_inputs(base: Callable[[str], dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Bytes for a JSON entry point: random bytes, or one of `json_texts`."""
    return st.one_of(st.binary(max_size=200), json_texts(base))


EVENTS = json_inputs(BAD.event)
CONTEXTS = json_inputs(lambda _: BAD.context())
APPOINTMENTS = json_inputs(BAD.appointment)
BUNDLES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUE.map(_dumps),
    st.lists(json_texts(BAD.appointment), max_size=4).map(BAD.bundle),
)


@st.composite
def hl7_inputs(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid SIU message with one field replaced by random text."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    message = BAD.siu(draw(st.text(alphabet="ABC123", min_size=1, max_size=6)))
    segments = message.split(b"\n")
    index = draw(st.integers(0, len(segments) - 2))
    fields = segments[index].split(b"|")
    where = draw(st.integers(1, len(fields) - 1)) if len(fields) > 1 else 0
    fields[where] = draw(TEXT).encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8
    segments[index] = b"|".join(fields)
    return b"\n".join(segments)


HL7 = hl7_inputs()


@st.composite
def csv_inputs(draw: st.DrawFn) -> bytes:
    """A header and a row: random bytes, random text cells, or a valid row with a cell made random."""
    if draw(st.booleans()):
        return BAD.CSV_HEADER + b"\n" + draw(st.binary(max_size=200)) + b"\n"
    values = dict(BAD.event(draw(st.text(alphabet="abc123", min_size=1, max_size=6))))
    key = draw(st.sampled_from(list(values)))
    values[key] = draw(TEXT)
    row = ",".join('"' + str(values[name]).replace('"', '""') + '"' for name in BAD.CSV_FIELDS)
    return BAD.CSV_HEADER + b"\n" + row.encode("utf-8", "surrogatepass") + b"\n"


def fuzz(service: Service, inputs: st.SearchStrategy[Any], kinds: dict[str, Any], check: Callable[[Any], None]) -> None:
    """Run `check` on each kind of bad input (explicit examples), then on generated inputs, as many as the
    store's share of WNB_INGEST_EXAMPLES."""
    test: Any = given(inputs)(check)
    for body in kinds.values():
        test = example(body)(test)
    settings(SETTINGS, max_examples=EXAMPLES_ON[service.db.dialect.name])(test)()


# ---- what is stored ----


class Tables:
    """Whether a rejected input left every other table alone, and the rejects' receipts.

    On SQLite a trigger on each of those tables counts every row written (reading every row after each of
    thousands of examples made the test quadratic); on PostgreSQL a digest of each table's rows is compared.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.names = [table.name for table in SQLModel.metadata.sorted_tables if table.name not in MAY_CHANGE]
        if service.db.dialect.name == "sqlite":
            with service.db.begin() as connection:
                connection.execute(text("CREATE TABLE IF NOT EXISTS fuzz_writes (n INTEGER NOT NULL)"))
                connection.execute(text("INSERT INTO fuzz_writes (n) VALUES (0)"))
                for name in self.names:
                    for change in ("INSERT", "UPDATE", "DELETE"):
                        connection.execute(
                            text(
                                f"CREATE TRIGGER fuzz_{change.lower()}_{name} AFTER {change} ON {name} "
                                "BEGIN UPDATE fuzz_writes SET n = n + 1; END"
                            )
                        )

    def others(self) -> Any:
        """The count of rows written to those tables (SQLite), or a digest of each one's rows (PostgreSQL)."""
        with self.service.db.connect() as connection:
            if connection.dialect.name == "postgresql":
                digests = ", ".join(
                    f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t)"
                    for name in self.names
                )
                return dict(zip(self.names, connection.execute(text(f"SELECT {digests}")).one(), strict=True))
            return connection.execute(text("SELECT n FROM fuzz_writes")).scalar_one()

    def receipts(self) -> int:
        """How many rejected rows have been received, counting each resent one again."""
        with self.service.db.connect() as connection:
            return int(connection.execute(text("SELECT coalesce(sum(received_count), 0) FROM reject")).scalar_one())

    def reasonless(self) -> int:
        with self.service.db.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM reject WHERE reason = ''")).scalar_one())


def settle(tables: Tables, before: dict[str, Any], receipts: int, rejected: int, stored: int) -> None:
    """What every example asserts once its input went in."""
    assert tables.receipts() - receipts == rejected, "each rejected item is one receipt in the data-quality queue"
    assert tables.reasonless() == 0
    if stored == 0:
        assert tables.others() == before, "a rejected input changed a table other than events, rejects and audit"


# ---- readers (files) and context import, through the service ----


@pytest.fixture
def tables(service: Service) -> Tables:
    return Tables(service)


def _file(tables: Tables, tmp_path: Path, fmt: str, content: bytes) -> None:
    path = tmp_path / f"input.{fmt}"
    path.write_bytes(content)
    before, receipts = tables.others(), tables.receipts()
    items = sum(1 for _ in read_file(path, fmt))
    counts = tables.service.ingest(read_file(path, fmt), origin="fuzz")
    assert sum(counts.values()) == items, counts  # each item stored or rejected: none lost, none added
    settle(tables, before, receipts, counts["rejected"], sum(counts[status] for status in STORED))


def _lines(body: bytes) -> bytes:
    return body + b"\n"


def test_ndjson_reader(tables: Tables, tmp_path: Path) -> None:
    fuzz(tables.service, EVENTS, BAD.json_kinds("k"), lambda body: _file(tables, tmp_path, "ndjson", _lines(body)))


def test_csv_reader(tables: Tables, tmp_path: Path) -> None:
    kinds = {name: BAD.CSV_HEADER + b"\n" + row + b"\n" for name, row in BAD.csv_kinds("k").items()}
    fuzz(tables.service, csv_inputs(), kinds, lambda body: _file(tables, tmp_path, "csv", body))


def test_fhir_reader(tables: Tables, tmp_path: Path) -> None:
    kinds = {**BAD.fhir_resource_kinds("k"), **BAD.fhir_bundle_kinds("k")}
    fuzz(tables.service, st.one_of(APPOINTMENTS, BUNDLES), kinds, lambda body: _file(tables, tmp_path, "fhir", body))


def test_hl7_reader(tables: Tables, tmp_path: Path) -> None:
    fuzz(tables.service, HL7, BAD.hl7_kinds("K"), lambda body: _file(tables, tmp_path, "hl7", body))


def test_context_import(tables: Tables, tmp_path: Path) -> None:
    fuzz(tables.service, CONTEXTS, BAD.context_kinds(), lambda body: _context(tables, tmp_path, body))


def _context(tables: Tables, tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "context.ndjson"
    path.write_bytes(_lines(body))
    before, receipts = tables.others(), tables.receipts()
    items = sum(1 for _ in read_file(path, "ndjson"))
    counts = tables.service.import_context(read_file(path, "ndjson"), origin="fuzz")
    assert sum(counts.values()) == items, counts
    settle(tables, before, receipts, counts["rejected"], counts["created"] + counts["updated"])


# ---- HTTP, on the real server ----


@pytest.fixture
def client(service: Service, tables: Tables) -> Iterator[httpx.Client]:
    key = pas_clinic_key(service.db)
    headers = {"X-API-Key": key}
    with serving(create_app(service)) as url, httpx.Client(base_url=url, headers=headers, timeout=30) as session:
        yield session


def _send(client: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    answer = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    return answer


def _single(tables: Tables, client: httpx.Client, method: str, path: str, body: bytes) -> None:
    before, receipts = tables.others(), tables.receipts()
    answer = _send(client, method, path, body)
    assert answer.status_code in (200, 201, 400, 403, 422), answer.text
    rejected = answer.status_code in (400, 403, 422)  # 403: for a source the key is not bound to, kept
    if rejected:
        assert answer.text and ("reason" in answer.json() or "issue" in answer.json())
    settle(tables, before, receipts, int(rejected), int(not rejected))


def test_post_one_event(tables: Tables, client: httpx.Client) -> None:
    kinds = BAD.json_kinds("k")
    fuzz(tables.service, EVENTS, kinds, lambda body: _single(tables, client, "POST", "/v1/attendance-events", body))


def test_post_a_batch(tables: Tables, client: httpx.Client) -> None:
    kinds = {name: [body] for name, body in BAD.json_kinds("k").items()}
    fuzz(
        tables.service, st.lists(json_texts(BAD.event), max_size=5), kinds, lambda items: _batch(tables, client, items)
    )


def _batch(tables: Tables, client: httpx.Client, items: list[bytes]) -> None:
    body = b'{"events": [' + b", ".join(items) + b"]}"
    before, receipts = tables.others(), tables.receipts()
    answer = _send(client, "POST", "/v1/attendance-events", body)
    if answer.status_code in (400, 422):  # the body as a whole is refused (not JSON at all), and kept
        settle(tables, before, receipts, 1, 0)
        return
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [result["index"] for result in results] == list(range(len(items)))  # every item answered, in order
    rejected = [result for result in results if result["status"] == "rejected"]
    assert all(result["reason"] for result in rejected)
    settle(tables, before, receipts, len(rejected), len(results) - len(rejected))


def test_put_context(tables: Tables, client: httpx.Client) -> None:
    path = f"/v1/people/{BAD.CHILD}/context"
    fuzz(tables.service, CONTEXTS, BAD.context_kinds(), lambda body: _single(tables, client, "PUT", path, body))


def test_post_fhir_appointment(tables: Tables, client: httpx.Client) -> None:
    kinds = BAD.fhir_resource_kinds("k")
    fuzz(tables.service, APPOINTMENTS, kinds, lambda body: _single(tables, client, "POST", "/fhir/Appointment", body))


def test_post_fhir_bundle(tables: Tables, client: httpx.Client) -> None:
    fuzz(tables.service, BUNDLES, BAD.fhir_bundle_kinds("k"), lambda body: _bundle(tables, client, body))


def _bundle(tables: Tables, client: httpx.Client, body: bytes) -> None:
    before, receipts = tables.others(), tables.receipts()
    answer = _send(client, "POST", "/fhir", body)
    if answer.status_code in (400, 422):
        settle(tables, before, receipts, 1, 0)
        return
    assert answer.status_code == 200, answer.text
    statuses = [entry["response"]["status"] for entry in answer.json()["entry"]]
    rejected = sum(status.startswith("422") for status in statuses)
    settle(tables, before, receipts, rejected, len(statuses) - rejected)


# ---- MLLP, on a real listener ----


@pytest.fixture
def mllp(service: Service) -> Iterator[Listener]:
    with running_listener(service) as listener:
        yield listener


def test_mllp_message(tables: Tables, mllp: Listener) -> None:
    fuzz(tables.service, HL7, BAD.hl7_kinds("K"), lambda body: _message(tables, mllp, body))


def _message(tables: Tables, mllp: Listener, body: bytes) -> None:
    block = body.replace(b"\x0b", b"").replace(b"\x1c", b"").replace(b"\n", b"\r")  # one frame: no framing bytes
    before, receipts = tables.others(), tables.receipts()
    with socket.create_connection(("127.0.0.1", mllp.port), timeout=20) as connection:
        connection.sendall(b"\x0b" + block + b"\x1c\r")
        answer = b""
        while b"\x1c\r" not in answer:
            chunk = connection.recv(65536)
            assert chunk, "the listener closed the connection without an answer"
            answer += chunk
    code = answer.split(b"MSA|", 1)[1][:2]
    assert code in (b"AA", b"AE", b"AR"), answer
    settle(tables, before, receipts, int(code != b"AA"), int(code == b"AA"))
