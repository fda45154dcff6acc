"""Replay a period's stored history under a candidate ruleset, in a scratch database, and compare.

Governance tests a proposed ruleset against past data before it goes live (ARCHITECTURE.md §1): every
event received before the end of the period is replayed in the order it was received, with the person
contexts, the WNB-14 follow-up sweeps and the people's task actions of the real history, into a fresh
SQLite file that is thrown away afterwards. The real database is only read. What the candidate would
have raised in the period is then compared, per rule and per role, with the baseline: the same history replayed
in a second scratch file, each event under the version it was first evaluated with (its evaluation record names
it; the registry holds its files), so both sides differ in their rules alone. An event whose version the registry
does not hold is replayed under the version the registry had active when it was received (else the first ever
active); while no version was ever active in the registry, the baseline is what was actually raised.
"""

from __future__ import annotations

import heapq
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from wnb import metrics
from wnb.core import policy
from wnb.core.calendar import london_time_on
from wnb.core.errors import WnbError
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset, load_files
from wnb.database import open_database
from wnb.service import Service
from wnb.store import audit, repo, rulesets
from wnb.store.db import writing
from wnb.store.reports import Item, raised_items
from wnb.store.schema import new_sqlite_file
from wnb.store.sql import Record

# How many differing items a simulation lists; the counts always cover everything.
MAX_LISTED = 200
# Events replayed per transaction (a batch ends early at a person's action or a sweep).
BATCH = 1000
_HUMAN_ACTIONS = {"acknowledged": "ack", "completed": "complete", "cancelled": "cancel"}


@dataclass(frozen=True)
class Comparison:
    """Counts of flags and tasks raised in the period for one rule or one role: actually and simulated."""

    key: str
    actual_flags: int = 0
    simulated_flags: int = 0
    actual_tasks: int = 0
    simulated_tasks: int = 0

    @property
    def differs(self) -> bool:
        return self.actual_flags != self.simulated_flags or self.actual_tasks != self.simulated_tasks

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "actual_flags": self.actual_flags,
            "simulated_flags": self.simulated_flags,
            "actual_tasks": self.actual_tasks,
            "simulated_tasks": self.simulated_tasks,
            "differs": self.differs,
        }


@dataclass(frozen=True)
class Simulation:
    """What a candidate ruleset would have raised in [start, end) beside what was raised."""

    start: datetime
    end: datetime
    candidate_version: str
    events_replayed: int
    by_rule: list[Comparison]
    by_role: list[Comparison]
    only_simulated: list[Item] = field(default_factory=list)
    only_actual: list[Item] = field(default_factory=list)
    # What the "actual" side is: `replayed` under each event's own version (with the events per version), or
    # `as raised` (an empty registry).
    baseline: dict[str, Any] = field(default_factory=lambda: {"how": "as raised", "versions": {}})

    @property
    def differs(self) -> bool:
        return bool(self.only_simulated or self.only_actual) or any(row.differs for row in self.by_rule)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "candidate_version": self.candidate_version,
            "events_replayed": self.events_replayed,
            "differs": self.differs,
            "by_rule": [row.as_dict() for row in self.by_rule],
            "by_role": [row.as_dict() for row in self.by_role],
            "only_simulated": [item.as_dict() for item in self.only_simulated[:MAX_LISTED]],
            "only_actual": [item.as_dict() for item in self.only_actual[:MAX_LISTED]],
            "baseline": self.baseline,
        }


class _Clock:
    """The scratch service's clock: the real received time of each replayed event, in turn, else `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.queue: deque[datetime] = deque()

    def __call__(self) -> datetime:
        return self.queue.popleft() if self.queue else self.now


def _count(items: list[Item]) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    by_rule: Counter[tuple[str, str]] = Counter()
    by_role: Counter[tuple[str, str]] = Counter()
    for item in items:
        for rule_id in item.rule_ids:
            by_rule[(rule_id, item.kind)] += 1
        if item.role:
            by_role[(item.role, item.kind)] += 1
    return by_rule, by_role


def _compare(
    keys: list[str], actual: Counter[tuple[str, str]], simulated: Counter[tuple[str, str]]
) -> list[Comparison]:
    return [
        Comparison(
            key,
            actual_flags=actual[(key, "flag")],
            simulated_flags=simulated[(key, "flag")],
            actual_tasks=actual[(key, "task")],
            simulated_tasks=simulated[(key, "task")],
        )
        for key in keys
    ]


def compare(
    actual: list[Item],
    simulated: list[Item],
    rule_order: list[str],
    start: datetime,
    end: datetime,
    version: str,
    replayed: int,
) -> Simulation:
    """Per rule and per role counts, and the items raised on one side only (pure)."""
    actual_rules, actual_roles = _count(actual)
    simulated_rules, simulated_roles = _count(simulated)
    seen_rules = {key for key, _ in actual_rules} | {key for key, _ in simulated_rules}
    rules = rule_order + sorted(seen_rules - set(rule_order))
    roles = sorted({key for key, _ in actual_roles} | {key for key, _ in simulated_roles})
    actual_keys = Counter(item.key for item in actual)
    simulated_keys = Counter(item.key for item in simulated)
    only_simulated = _one_side(simulated, simulated_keys - actual_keys)
    only_actual = _one_side(actual, actual_keys - simulated_keys)
    return Simulation(
        start,
        end,
        version,
        replayed,
        _compare(rules, actual_rules, simulated_rules),
        _compare(roles, actual_roles, simulated_roles),
        only_simulated,
        only_actual,
    )


def _one_side(items: list[Item], extra: Counter[tuple[str, str, str | None, str]]) -> list[Item]:
    left = Counter(extra)
    chosen: list[Item] = []
    for item in items:
        if left[item.key] > 0:
            left[item.key] -= 1
            chosen.append(item)
    return chosen


def _moments(real: Connection, end: datetime) -> Iterator[tuple[datetime, int, int, str, Any]]:
    """Events received, people's task actions and the sweeps that judged follow-ups, before `end`, in order.

    Events keep their receipt (id) order and are streamed, so a year of history is never all in memory.
    """
    events = repo.events
    query = select(events).where(events.c.received_at < end).order_by(events.c.id)
    stream = real.execution_options(stream_results=True, yield_per=BATCH).execute(query)
    received = ((row.received_at, 0, row.id, "event", row) for row in stream)
    history, tasks = repo.task_history, repo.tasks
    actions_query = (
        select(
            history.c.id,
            history.c.at,
            history.c.action,
            history.c.note,
            tasks.c.nhs_number,
            tasks.c.service,
            tasks.c.code,
        )
        .join(tasks, tasks.c.id == history.c.task_id)
        .where(history.c.at < end, history.c.actor.like("user:%"), history.c.action.in_(list(_HUMAN_ACTIONS)))
        .order_by(history.c.at, history.c.id)
    )
    actions = [(row.at, 1, row.id, "action", row) for row in real.execute(actions_query).all()]
    follow_ups = repo.follow_ups
    sweeps_query = (
        select(follow_ups.c.judged_at)
        .where(follow_ups.c.judged_at.is_not(None), follow_ups.c.judged_at < end)
        .distinct()
        .order_by(follow_ups.c.judged_at)
    )
    sweeps = [(row.judged_at, 2, 0, "sweep", None) for row in real.execute(sweeps_query).all()]
    return heapq.merge(received, actions, sweeps, key=lambda moment: (moment[0], moment[1]))


def _act(service: Service, row: Record) -> None:
    """Repeat a person's task action on the scratch task with the same person, service and code."""
    with service.db.connect() as connection:
        task = repo.open_task(connection, row.nhs_number, row.service, row.code)
    if task is None:
        return  # the candidate never raised it, or it is closed already
    action = _HUMAN_ACTIONS[row.action]
    if action == "ack" and task.status != "requested":
        return
    service.act_on_task(f"T{task.id}", action, policy.system("simulation"), row.note, at=row.at)


def _copy_contexts(real: Connection, scratch: Engine, at: datetime) -> None:
    with writing(scratch) as connection:
        for row in real.execute(select(repo.contexts.c.nhs_number)):
            context = repo.person_context(real, row.nhs_number)
            if context is not None:
                repo.save_context(connection, context, at)


class _Versions:
    """The version each event of the real history was judged by, loaded from the registry (each once): what the
    baseline replays it under; and how many events each version judged."""

    def __init__(self, real_db: Engine, end: datetime) -> None:
        every = rulesets.history(real_db)
        began = {release.version: release.active_from or release.activated_at for release in every}
        self.releases = sorted((r for r in every if began[r.version]), key=lambda r: str(began[r.version]))
        # The first ever active (WNB_RULES_DIR's, registered on first start): what judged events before the registry.
        self.first = self.releases[0].version
        with real_db.connect() as connection:
            self.by_event = audit.evaluation_versions(connection, end)
        self.known = {release.version for release in every}
        self.db = real_db
        self.loaded: dict[str, Ruleset] = {}
        self.counts: Counter[str] = Counter()
        self.unrecorded = 0

    def _active_at(self, at: datetime) -> str:
        for release in reversed(self.releases):  # the newest activation at or before `at`
            began = release.active_from or release.activated_at
            if began is not None and began <= at:
                return release.version
        return self.first

    def load(self, version: str) -> Ruleset:
        if version not in self.loaded:
            self.loaded[version] = load_files(rulesets.files_of(self.db, version), f"version {version[:12]}")
        return self.loaded[version]

    def __call__(self, row: Record) -> Ruleset:
        version = self.by_event.get(row.id)
        if version not in self.known:
            self.unrecorded += 1
            version = self._active_at(row.received_at)
        self.counts[version] += 1
        return self.load(version)

    def as_dict(self) -> dict[str, Any]:
        return {"how": "replayed", "versions": dict(self.counts), "not_in_registry": self.unrecorded}


class _Replay:
    """Feeds the scratch service: events in batches, and people's actions and sweeps between them; with `versions`,
    each event is judged by the version it was judged by for real (a batch ends where the version changes), and
    each sweep and action by the version of the event before it."""

    def __init__(self, service: Service, clock: _Clock, versions: Callable[[Record], Ruleset] | None = None) -> None:
        self.service, self.clock = service, clock
        self.versions = versions
        self.current: Ruleset = service.ruleset
        self.pending: list[Record] = []
        self.replayed = 0

    def flush(self) -> None:
        """Ingest the pending events in one transaction (one a version), each at its real received time."""
        if not self.pending:
            return
        if self.versions is None:
            self._ingest(self.pending)
        else:
            run: list[Record] = []
            for row in self.pending:
                ruleset = self.versions(row)
                if run and ruleset is not self.current:
                    self._ingest(run)
                    run = []
                self.current = ruleset
                run.append(row)
            self._ingest(run)
        self.pending.clear()

    def _ingest(self, rows: list[Record]) -> None:
        self.clock.queue.extend(row.received_at for row in rows)
        items = [RawItem(None, "", dict(row.raw)) for row in rows]
        with self.service.judged_by(self.current):
            self.service.ingest(items, origin="simulation", actor="simulation", chunk=len(items))
        if self.clock.queue:
            raise WnbError("the simulation's clock fell out of step with the service; nothing was compared")
        self.replayed += len(items)

    def take(self, at: datetime, kind: str, row: Any) -> None:
        """One moment of history: an event joins the batch; an action or a sweep first ingests the batch."""
        if kind == "event":
            self.pending.append(row)
            if len(self.pending) >= BATCH:
                self.flush()
            return
        self.flush()
        self.clock.now = at
        with self.service.judged_by(self.current):
            if kind == "sweep":
                self.service.sweep(at, actor="simulation")
            else:
                _act(self.service, row)


def replay(
    real_db: Engine,
    candidate: Ruleset,
    start: datetime,
    end: datetime,
    scratch_dir: Path,
    versions: Callable[[Record], Ruleset] | None = None,
    name: str = "simulation.db",
) -> tuple[Engine, int]:
    """Replay the real history before `end` under `candidate` into a new SQLite file `name` in `scratch_dir`; with
    `versions`, each event under the version it gives for it instead (the baseline).

    Sweeps run when the real ones judged WNB-14 follow-ups (their stored `judged_at`), so each deadline is
    judged on what was stored when it really was: a follow-up not yet judged for real is not judged here.
    """
    scratch = open_database(new_sqlite_file(scratch_dir / name))
    clock = _Clock(start)
    feed = _Replay(Service(scratch, candidate, clock), clock, versions)
    with real_db.connect() as real:
        _copy_contexts(real, scratch, start)
        for at, _, _, kind, row in _moments(real, end):
            feed.take(at, kind, row)
        feed.flush()
    return scratch, feed.replayed


def simulate(real_db: Engine, candidate: Ruleset, start: datetime, end: datetime) -> Simulation:
    """Compare what `candidate` would have raised in [start, end) with what was raised; the real db is only read."""
    if end <= start:
        raise WnbError(f"the period must end after it starts (from {start.isoformat()} to {end.isoformat()})")
    ever_active = any(release.activated_at is not None for release in rulesets.history(real_db))
    versions = _Versions(real_db, end) if ever_active else None
    with tempfile.TemporaryDirectory(prefix="wnb-simulation-") as folder, metrics.muted():
        simulated, replayed = _replayed_items(real_db, candidate, start, end, Path(folder), None)
        if versions is not None:
            first = versions.load(versions.first)
            actual, _ = _replayed_items(real_db, first, start, end, Path(folder), versions)
    if versions is None:
        with real_db.connect() as connection:
            actual = raised_items(connection, start, end)
    rule_order = [rule.id for rule in candidate.rules]
    result = compare(actual, simulated, rule_order, start, end, candidate.version, replayed)
    if versions is None:
        return result
    return replace(result, baseline=versions.as_dict())


def _replayed_items(
    real_db: Engine,
    ruleset: Ruleset,
    start: datetime,
    end: datetime,
    folder: Path,
    versions: Callable[[Record], Ruleset] | None,
) -> tuple[list[Item], int]:
    name = "baseline.db" if versions else "simulation.db"
    scratch, replayed = replay(real_db, ruleset, start, end, folder, versions, name)
    try:
        with scratch.connect() as connection:
            return raised_items(connection, start, end), replayed
    finally:
        scratch.dispose()


def period_of(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants from London midnight starting `first` to London midnight after `last` (both days whole)."""
    if last < first:
        raise WnbError(f"the period must end after it starts (from {first.isoformat()} to {last.isoformat()})")
    return london_time_on(first, time(0)), london_time_on(last + timedelta(days=1), time(0))
