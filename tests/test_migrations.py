"""Alembic migrations: from nothing they build exactly the schema of the SQLModel tables, on both stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from wnb.store.db import open_database
from wnb.store.schema import current, head

from .conftest import ROOT

STORES = ("sqlite", "postgres")
WNB = Path(sys.executable).parent / "wnb"


def _differences(url: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    return list(found)


def test_migrations_from_nothing_build_exactly_the_models_schema(db_url: str) -> None:
    open_database(db_url).dispose()
    assert _differences(db_url) == []


def test_a_migrated_database_is_at_the_newest_revision(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as connection:
        assert current(connection) == head()
    engine.dispose()


def test_wnb_db_upgrade_migrates_a_new_database_and_then_says_it_is_current(tmp_path: Path) -> None:
    env = {**os.environ, "WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    first = subprocess.run([str(WNB), "db", "upgrade"], env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from revision none to {head()}" in first.stdout
    again = subprocess.run([str(WNB), "db", "upgrade"], env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    assert f"already at revision {head()}" in again.stdout
    engine = create_engine(env["WNB_DATABASE_URL"])
    assert "event" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted_and_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    SQLModel.metadata.create_all(old)
    with old.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE outbox DROP COLUMN claimed_at")  # added by revision 0002
        connection.exec_driver_sql("INSERT INTO audit_head (id, seq, hash) VALUES (1, 7, 'h')")
    old.dispose()
    engine = open_database(url)
    with engine.connect() as connection:
        assert current(connection) == head()
        assert connection.exec_driver_sql("SELECT seq FROM audit_head").scalar_one() == 7
    assert _differences(url) == []
    engine.dispose()
