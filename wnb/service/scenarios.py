"""Scenario files: context and events in, the expected flags and tasks out (rules/*/scenarios/README.md).

Each scenario runs on a fresh SQLite file through the real service, so it tests exactly what ingestion does.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from wnb.core import policy
from wnb.core.errors import WnbError
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import listing
from wnb.store.schema import new_sqlite_file

_TIME_FIELDS = {"due_at", "raised_at"}


@dataclass
class ScenarioResult:
    path: Path
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def scenario_files(ruleset_dir: Path) -> list[Path]:
    return sorted((ruleset_dir / "scenarios").glob("*.yaml"))


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise WnbError(f"time {value!r} needs a UTC offset")
    return moment.astimezone(UTC)


def _plain(value: Any) -> Any:
    """YAML may read dates and times as Python values; events want the text a feed would send."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class _StepClock:
    def __init__(self) -> None:
        self.now = datetime(2000, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, want in expected.items():
        have = actual.get(key)
        if key in _TIME_FIELDS:
            if have is None or _instant(want) != _instant(have):
                return False
        elif str(want).lower() != str(have).lower() if isinstance(want, bool) else want != have:
            return False
    return True


def _compare(kind: str, expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    remaining = list(actual)
    for want in expected:
        want = {key: str(value) if key == "nhs_number" else value for key, value in want.items()}
        found = next((item for item in remaining if _matches(want, item)), None)
        if found is None:
            problems.append(f"expected {kind} not found: {json.dumps(_plain(want), sort_keys=True)}")
        else:
            remaining.remove(found)
    fields = sorted({key for want in expected for key in want}) or ["code", "status"]
    for extra in remaining:
        shown = {key: extra.get(key) for key in fields}
        problems.append(f"unexpected {kind}: {json.dumps(_plain(shown), sort_keys=True)}")
    return problems


def run_scenario(ruleset: Ruleset, path: Path, database_url: str | None = None) -> ScenarioResult:
    """Run one scenario file in a fresh SQLite file (or in `database_url`, which must be empty)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = ScenarioResult(path, str(spec.get("name", path.stem)))
    with tempfile.TemporaryDirectory(prefix="wnb-scenario-") as folder:
        db = open_database(database_url or new_sqlite_file(Path(folder) / "scenario.db"))
        clock = _StepClock()
        service = Service(db, ruleset, clock)
        defaults = spec.get("event_defaults") or {}
        try:
            for number, step in enumerate(spec.get("steps") or [], start=1):
                _run_step(service, clock, defaults, step, number)
            expect = spec.get("expect") or {}
            with db.connect() as connection:
                flags = listing.flags(connection, include_closed=True)
                tasks = listing.tasks(connection, include_closed=True)
                rejects = listing.count_rejects(connection)
                queued = listing.rejects(connection, include_handled=True)
            result.problems += _compare("flag", expect.get("flags") or [], flags)
            result.problems += _compare("task", expect.get("tasks") or [], tasks)
            if "data_quality" in expect:  # every item of the queue, rejects and stale outcomes alike
                result.problems += _compare("data-quality item", expect["data_quality"] or [], queued)
            if "rejects" in expect and expect["rejects"] != rejects:
                result.problems.append(f"expected {expect['rejects']} rejects, found {rejects}")
        except WnbError as error:
            result.problems.append(f"error: {error}")
        finally:
            db.dispose()
    return result


def _note(value: Any) -> str | None:
    """A task step's `note:` as text (YAML may read `note: 2` as a number); completing or cancelling needs one."""
    return None if value is None else str(value)


def _run_step(service: Service, clock: _StepClock, defaults: dict[str, Any], step: dict[str, Any], number: int) -> None:
    ((kind, body),) = step.items()
    body = _plain(body)
    if kind == "context":
        clock.now = datetime(2000, 1, 1, tzinfo=UTC)
        service.import_context([RawItem(number, json.dumps(body), body)], origin="scenario")
    elif kind == "event":
        event = {**_plain(defaults), **body}
        clock.now = _instant(event.get("recorded_at") or event["appointment_at"])
        service.ingest_one(RawItem(number, json.dumps(event), event), origin="scenario")
    elif kind == "sweep":
        service.sweep(_instant(body))
    elif kind == "task":
        with service.db.connect() as connection:
            ref = listing.find_open_task(connection, str(body["nhs_number"]), body["service"], body["code"])
        by = policy.system(str(body.get("by", "scenario")))  # a scenario plays every part: wnb itself
        service.act_on_task(ref, body["do"], by, _note(body.get("note")), _instant(body["at"]))
    elif kind == "flag":
        with service.db.connect() as connection:
            ref = listing.find_active_flag(connection, str(body["nhs_number"]), body["code"])
        by = policy.system(str(body.get("by", "scenario")))
        service.resolve_flag(ref, by, body.get("reason", "resolved"), _instant(body["at"]))
    else:
        raise WnbError(f"step {number}: unknown step {kind!r}; use context, event, sweep, task or flag")
