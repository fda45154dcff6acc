"""`wnb` starts at once (issue 17): the store, service, settings, web and API stacks are imported only inside the
commands that use them. Their cost is measured by bench/cli_startup.py; these check what is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What `wnb --help` never imports.
HEAVY = (
    *("sqlalchemy", "sqlmodel", "alembic", "psycopg", "fastapi", "starlette", "uvicorn", "durable", "apscheduler"),
    *("pydantic", "pydantic_settings", "fhir", "holidays", "structlog"),
    *("wnb.store", "wnb.service", "wnb.settings", "wnb.database", "wnb.api", "wnb.web", "wnb.matcher", "wnb.ingest"),
)
# What listing tasks or flags never imports: the web, the API, the rules engine, the scheduler, the notifiers, and
# (from a SQLite file at the newest revision) neither the migrations nor the store's SQLAlchemy stack:
# wnb.store.quick reads the file with sqlite3.
NOT_FOR_A_LIST = (
    *("fastapi", "starlette", "uvicorn", "durable", "apscheduler", "fhir"),
    *("wnb.service", "wnb.api", "wnb.web", "wnb.matcher", "wnb.ingest", "wnb.notify"),
    *("alembic", "sqlalchemy", "sqlmodel", "psycopg", "wnb.database", "wnb.store.tables"),
)
# What listing them as JSON does not import either: the settings' pydantic stack (wnb.quick_settings reads the
# environment), the domain's models, and structlog (nothing logs; wnb.logs sets it up when it is imported).
NOT_FOR_JSON = (*NOT_FOR_A_LIST, "pydantic_settings", "wnb.settings", "wnb.core.domain", "structlog", "rich.table")

# `wnb ARGS...` in a fresh interpreter, then the name of every module it imported, on stderr.
RUN_THEN_LIST_MODULES = """
import sys
from wnb.cli.main import app
try:
    app(sys.argv[1:], prog_name="wnb")
except SystemExit as stop:
    assert not stop.code, stop.code
sys.stderr.write("\\n".join(sorted(sys.modules)))
"""


def imported_by(*args: str, folder: Path) -> list[str]:
    # The suite's audit key, as a development machine may set it; no other WNB_* variable (such as the suite's
    # WNB_TEST_POSTGRES) whose presence would have the settings built (wnb.quick_settings).
    env = {key: value for key, value in os.environ.items() if not key.startswith("WNB_")}
    env.update(WNB_DATABASE_URL=f"sqlite:///{folder / 'wnb.db'}", WNB_AUDIT_KEY=os.environ["WNB_AUDIT_KEY"])
    result = subprocess.run(
        [sys.executable, "-c", RUN_THEN_LIST_MODULES, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.split()


def among(modules: list[str], stacks: tuple[str, ...]) -> list[str]:
    return [name for name in modules if any(name == stack or name.startswith(f"{stack}.") for stack in stacks)]


def test_wnb_help_imports_none_of_the_store_service_settings_web_or_rules_engine_stacks(tmp_path: Path) -> None:
    imported = imported_by("--help", folder=tmp_path)

    assert "wnb.cli.work" in imported  # the commands were registered
    assert among(imported, HEAVY) == []


def test_listing_tasks_and_flags_imports_neither_the_web_the_api_the_store_stack_nor_the_settings(
    tmp_path: Path,
) -> None:
    first = imported_by("tasks", "--json", folder=tmp_path)  # makes the database: the migrations run once
    assert "wnb.store.listing" in first and "alembic" in first

    for listing in (
        ("tasks", "--json"),
        ("tasks", "--json", "--all", "--role", "safeguarding-nurse"),
        ("flags", "--json"),
    ):
        imported = imported_by(*listing, folder=tmp_path)

        assert "wnb.store.quick" in imported, listing
        assert among(imported, NOT_FOR_JSON) == [], listing
    # A table shows codes in the words of the ruleset in force: it reads the settings and the ruleset's titles.
    assert among(imported_by("tasks", folder=tmp_path), NOT_FOR_A_LIST) == []
