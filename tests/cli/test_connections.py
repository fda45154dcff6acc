"""A command closes the database connections it opened when it ends, on both stores: run in another program's
process (as the suite runs them), a connection left open would outlive the command until the garbage collector."""

from __future__ import annotations

import gc
import sqlite3

import psycopg
import pytest

from tests.conftest import DEFAULT_RULES, ROOT
from tests.factories import run_wnb

STORES = ("sqlite", "postgres")


def _open_connections() -> int:
    """The database connections this process holds open, of either driver."""
    gc.collect()
    count = 0
    for found in gc.get_objects():
        if isinstance(found, psycopg.Connection) and not found.closed:
            count += 1
        elif isinstance(found, sqlite3.Connection):
            try:
                found.total_changes  # noqa: B018  # a closed connection refuses every use
            except sqlite3.ProgrammingError:
                continue
            count += 1
    return count


@pytest.mark.parametrize("command", [["sweep"], ["rejects", "--json"], ["audit", "verify"]])
def test_a_command_closes_the_connections_it_opened(db_url: str, command: list[str]) -> None:
    before = _open_connections()
    result = run_wnb(ROOT, *command, env={"WNB_DATABASE_URL": db_url, "WNB_RULES_DIR": str(DEFAULT_RULES)})
    assert result.returncode == 0, result.stderr
    assert _open_connections() == before
