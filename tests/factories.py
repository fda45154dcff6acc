"""What many tests build the same way: a canonical event, the PAS's clinic key, a running MLLP listener, a `wnb`
command run in the test's process.

Synthetic people only: NHS numbers from the 999 test range that pass Modulus 11.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from wnb.cli.main import app as cli_app
from wnb.core.items import RawItem
from wnb.ingest.mllp import Listener
from wnb.service import Service
from wnb.store.accounts import create_api_key

CHILD = "9990000018"  # a seven-year-old
# What the PAS's clinic key is bound to write: its events' source and its FHIR Appointments' identifier system.
PAS_SOURCES = ("pas", "https://pas.example.nhs.uk/appointment")


def event(event_id: str = "e1", **changes: Any) -> dict[str, Any]:
    """A valid canonical event: the seven-year-old not brought to community paediatrics on Mon 2 Mar 2026 at
    10:00, recorded at 11:00, appointment `a-<event_id>`; `changes` override fields, None drops one."""
    base: dict[str, Any] = {
        "source": "pas",
        "event_id": event_id,
        "nhs_number": CHILD,
        "date_of_birth": "2019-05-01",
        "service": "community-paediatrics",
        "appointment_id": f"a-{event_id}",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def raw(data: dict[str, Any], line: int | None = 1) -> RawItem:
    """`data` as a reader gives it: its line number, its text, its parsed value."""
    return RawItem(line, json.dumps(data), data)


def pas_clinic_key(db: Engine) -> str:
    """The PAS's clinic-system key: its events, its FHIR Appointments and the children's context."""
    return create_api_key(db, "clinic-system", "pas", sources=PAS_SOURCES, context=True)


@contextmanager
def running_listener(service: Service, **options: Any) -> Iterator[Listener]:
    """A real MLLP listener on a free loopback port, its event loop on a thread of its own."""
    listener = Listener(service, **options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(listener.start(), loop).result(10)
    try:
        yield listener
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass(frozen=True)
class Ran:
    """What a `wnb` command gave, under subprocess.CompletedProcess's names."""

    returncode: int
    stdout: str
    stderr: str


def only_given(**given: str) -> dict[str, str | None]:
    """An environment for run_wnb in which the command sees, of the WNB_* variables, only `given`: the suite's own
    (tests/conftest.py sets some for every process) are unset."""
    return {**{name: None for name in os.environ if name.startswith("WNB_")}, **given}


def run_wnb(folder: Path, *args: str, env: Mapping[str, str | None] | None = None, stdin: str | None = None) -> Ran:
    """`wnb ARGS` in `folder`, in this process, through the Typer app the console script runs: a process each took
    one to two seconds, most of it imports. `env` is laid over this process's environment for the command only, as
    a process would have it; None or "" leaves a variable unset. A test of the process itself (its exit on a
    signal, its file modes, its one start) runs the console script instead."""
    given = {name: value or None for name, value in (env or {}).items()}
    with contextlib.chdir(folder):
        result = CliRunner().invoke(cli_app, list(args), env=given, input=stdin, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
