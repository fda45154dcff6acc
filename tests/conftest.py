"""Shared fixtures: the default ruleset, a service on a real SQLite file (and on PostgreSQL), a fixed clock.

A test module that sets `STORES = ("sqlite", "postgres")` runs its `db_url` (and `service`) tests on both
stores; the PostgreSQL half (marked `postgres`, select it with `-m postgres`) uses one database created for
the session with a unique name, emptied before each test, and is skipped when no server answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.rule_files import load_ruleset
from wnb.service import Service
from wnb.store import accounts
from wnb.store.schema import new_sqlite_file

# pytest-xdist starts its workers with COLUMNS=80; a rich Console made at import would keep that width for good,
# and the CLI tests that give COLUMNS to a command (CliRunner's env) would see 80 columns in a worker only.
os.environ.pop("COLUMNS", None)

# One fixed audit key for the whole suite (subprocesses inherit it): wnb writes and verifies with it.
TEST_AUDIT_KEY = "test:" + "0123456789abcdef" * 4
os.environ["WNB_AUDIT_KEY"] = TEST_AUDIT_KEY
# A proposal in the suite does not run the hazard log's named tests (the suite inside the suite); the tests of that
# feature (tests/service/test_system_evidence.py) turn it on with a tiny hazard log of their own.
os.environ["WNB_PROPOSE_TESTS"] = "false"

# argon2 is slow on purpose (a tenth to a quarter of a second a hash or check here, and the suite signs in
# thousands of times): accounts made in the suite's processes are hashed, and so checked, at argon2's lowest cost.
# Production's parameters are argon2-cffi's defaults; tests/store/test_accounts.py checks that wnb keeps them.
accounts._hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)

POSTGRES_SERVER = os.environ.get("WNB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "rules" / "default"


# The files that take longest (a trace of each file's start and end on the workers), handed out first. With
# `--dist loadfile` a file runs whole on one worker, and pytest-xdist by default hands out the files with the most
# tests first: the replica file (one test, over a minute) then ran last, alone, while the other worker sat idle.
# pyproject.toml's addopts turn that reordering off (--no-loadscope-reorder), so this order is the one kept.
LONGEST_FIRST = (
    "tests/store/test_replicas.py",
    "tests/ingest/test_ingest_fuzz.py",
    "tests/web/test_accessibility.py",
    "tests/web/test_sign_in.py",
    "tests/api/test_policy.py",
    "tests/web/test_web_browser.py",
    "tests/service/test_properties.py",
    "tests/cli/test_cli.py",
    "tests/api/test_api.py",
    "tests/notify/test_notify_faults.py",
    "tests/cli/test_demo.py",
    "tests/ingest/test_ingest_total.py",
    "tests/store/test_store.py",
    "tests/ingest/test_ahead.py",
    "tests/service/test_restart.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, the rest after them in their usual order."""
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # a stable sort


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_ruleset(DEFAULT_RULES)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        stores = getattr(metafunc.module, "STORES", ("sqlite",))
        params = [pytest.param(store, marks=pytest.mark.postgres) if store == "postgres" else store for store in stores]
        metafunc.parametrize("db_url", params, indirect=True)


def _server_admin() -> Any:
    """An autocommit connection to the server's `postgres` database, or None when no server answers."""
    import psycopg

    try:
        return psycopg.connect(
            POSTGRES_SERVER.replace("+psycopg", "") + "/postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError:
        return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """Creates and drops uniquely named databases on the local PostgreSQL server (skips when none answers)."""
    admin = _server_admin()
    if admin is None:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_SERVER} (set WNB_TEST_POSTGRES or start one)")
    created: list[str] = []

    def create() -> str:
        name = f"wnb_t_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        # Tests stop wnb, never the server: waiting for each commit's WAL flush would only slow them down.
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        created.append(name)
        return f"{POSTGRES_SERVER}/{name}"

    yield create
    for name in created:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server: Any) -> str:
    """One migrated database for the session's PostgreSQL tests."""
    url: str = postgres_server()
    open_database(url).dispose()
    return url


def _empty(url: str) -> None:
    """Delete every row and restart the id sequences (DELETE on a few small tables is far faster than TRUNCATE)."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'alembic_version'"
            )
        ]
        # Tables that refer to others (the messages of tasks) are emptied first, so no foreign key is broken.
        referring = {
            row[0]
            for row in connection.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f'")
        }
        tables.sort(key=lambda table: table not in referring)
        sequences = [row[0] for row in connection.execute("SELECT sequencename FROM pg_sequences")]
        statements = [f"DELETE FROM {table}" for table in tables]
        statements += [f"ALTER SEQUENCE {sequence} RESTART" for sequence in sequences]
        connection.execute("; ".join(statements))


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database: a copy of the migrated SQLite file, or the session's PostgreSQL database emptied."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return new_sqlite_file(tmp_path / "wnb.db")
    url: str = request.getfixturevalue("postgres_session_url")
    _empty(url)
    return url


@pytest.fixture
def service(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(db_url)
    yield Service(db, ruleset, clock)
    db.dispose()
