"""Three real `wnb serve` replicas on one PostgreSQL database, killed with SIGKILL and restarted while several
client processes post a synthetic feed with duplicates and corrections and sweeps do real work: afterwards
every event is stored once, flags, tasks, follow-ups and rejects equal those of the same feed ingested
sequentially, no e-mail went twice, the audit chain verifies.

The feed comes in two phases, each child in one. Phase A's children are dated so that by SWEEP_AT every
WNB-14 deadline has passed and every task is overdue; phase B's so that nothing of theirs is due then. Phase
A is posted first; while phase B is posted, `wnb sweep --now SWEEP_AT` processes run again and again (some
SIGKILLed) and judge and escalate phase A. The sequential reference does phase A, sweep, phase B, sweep:
since no phase B child has anything due and no phase A child gets another event, the outcomes must be equal.
Every date is moved years ahead of today (children's dates of birth and statuses with them), so the
replicas' own sweeps, at the clock's time, find nothing due: only the sweeps at SWEEP_AT do, as in the
reference. Replicas are killed at random points of the feed rather than of the clock, so a slow machine
gets as many restarts as a fast one, not more; every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import DEFAULT_RULES, ROOT
from tests.server import free_port
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.notify import SmtpSettings, deliver, parse_addresses
from wnb.rule_files import load_ruleset
from wnb.service import Service
from wnb.store import audit
from wnb.store.accounts import create_api_key

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WNB = Path(sys.executable).parent / "wnb"
NOTIFY = "safeguarding-nurse=sg@trust.example"  # red flags, and tasks escalated to safeguarding nurses
EVENTS = int(os.environ.get("WNB_TEST_REPLICA_EVENTS", "20000"))
CHILDREN = 3_000
CLIENTS = 4
BATCH = 25
KILLS = 8  # replicas SIGKILLed (and restarted) at random points of the feed; and the first 2 sweeps
SHIFT = {"A": timedelta(weeks=4 * 52), "B": timedelta(weeks=6 * 52)}  # whole weeks: weekdays stay weekdays
SWEEP_AT = datetime(2030, 7, 1, 12, tzinfo=UTC)  # after phase A's due times, before phase B's first event
MARGIN = timedelta(days=60)  # the least gap, checked, between SWEEP_AT and either phase
LIMIT = 600.0  # seconds: the longest the clients may take; every other wait has its own, smaller bound
BATCH_LIMIT = 120.0  # seconds a client may spend resending one batch before it gives up, saying so
SWEEPER = "wnb-fault-test-sweep"  # the application name of the test's `wnb sweep` processes
SWEEPING = (  # a sweeper holds its advisory locks only inside a sweep's transaction
    "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
    f"WHERE application_name = '{SWEEPER}' AND locktype = 'advisory' AND granted"
)


# ---- the feed ----


def _phase(person: str) -> str:
    return "A" if zlib.crc32(person.encode()) % 2 == 0 else "B"


def _later(value: Any, by: timedelta, kind: type[date]) -> Any:
    """An ISO date or time `by` later; anything else (an invalid row's text) as it was."""
    if not isinstance(value, str):
        return value
    with contextlib.suppress(ValueError):
        return (kind.fromisoformat(value) + by).isoformat()
    return value


def _shifted_event(line: str, by: timedelta) -> str:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(event, dict):
        return line
    for name in ("appointment_at", "recorded_at"):
        if name in event:
            event[name] = _later(event[name], by, datetime)
    if "date_of_birth" in event:
        event["date_of_birth"] = _later(event["date_of_birth"], by, date)
    return json.dumps(event)


def _shifted_context(record: dict[str, Any], by: timedelta) -> dict[str, Any]:
    record["date_of_birth"] = _later(record["date_of_birth"], by, date)
    for status in record.get("statuses", []):
        for name in ("start", "end"):
            if name in status:
                status[name] = _later(status[name], by, date)
    return record


def _person(line: str) -> str:
    """Whose line this is (an invalid line without a person: its own text, spread at random)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return line
    return str(data.get("nhs_number")) if isinstance(data, dict) and "nhs_number" in data else line


def _times(path: Path) -> list[datetime]:
    found = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError, ValueError, TypeError, KeyError):
            found.append(datetime.fromisoformat(json.loads(line)["recorded_at"]))
    return found


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic feed split by child into phases A and B (context.ndjson, A.ndjson, B.ndjson), each shifted."""
    sys.path.insert(0, str(ROOT))
    from bench.synthetic import generate

    folder = tmp_path_factory.mktemp("feed")
    generate(events=EVENTS, children=CHILDREN, seed=5, out=folder, progress=False)
    phases: dict[str, list[str]] = {"A": [], "B": []}
    for line in (folder / "events.ndjson").read_text().splitlines():
        phase = _phase(_person(line))
        phases[phase].append(_shifted_event(line, SHIFT[phase]))
    for phase, lines in phases.items():
        (folder / f"{phase}.ndjson").write_text("\n".join(lines) + "\n")
    records = [json.loads(line) for line in (folder / "context.ndjson").read_text().splitlines()]
    shifted = [_shifted_context(record, SHIFT[_phase(record["nhs_number"])]) for record in records]
    (folder / "context.ndjson").write_text("".join(json.dumps(record) + "\n" for record in shifted))
    a_times, b_times = _times(folder / "A.ndjson"), _times(folder / "B.ndjson")
    assert datetime.now(UTC) + MARGIN < min(a_times), "phase A must lie ahead of the clock: raise SHIFT"
    assert max(a_times) + MARGIN < SWEEP_AT < min(b_times) - MARGIN, "SWEEP_AT must lie between the phases"
    return folder


# ---- the parts ----


class Mailbox:
    """Every message the SMTP server accepted."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        text = envelope.content.decode("utf-8", errors="replace")
        message_id = next(line for line in text.splitlines() if line.lower().startswith("message-id:"))
        with self._lock:
            self.ids.append(message_id.split(":", 1)[1].strip())
        return "250 OK"


@dataclass
class Replicas:
    """`wnb serve` processes on loopback, killed and restarted on demand."""

    env: dict[str, str]
    ports: list[int]
    folder: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: int = 0

    def start(self, index: int) -> None:
        with (self.folder / f"replica-{index}.log").open("ab") as log:
            self.processes[index] = subprocess.Popen(
                [str(WNB), "serve", "--port", str(self.ports[index]), "--sweep-minutes", "0.05"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )

    def wait_live(self, index: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.processes[index].poll() is None, f"replica {index} exited: see replica-{index}.log"
            try:
                if httpx.get(f"http://127.0.0.1:{self.ports[index]}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica {index} did not start within {timeout}s")

    def kill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=10)
        self.kills += 1

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@dataclass
class Sweeper:
    """`wnb sweep --now SWEEP_AT` processes while phase B is posted, one each time another `every` lines are
    stored: the first `killed` that get to sweep are SIGKILLed inside their sweep's transaction; then more run
    until one has swept (not skipped because a replica was sweeping) to the end."""

    env: dict[str, str]
    engine: Any  # to see, in pg_stat_activity and pg_locks, that a sweep is under way
    progress: Any  # the clients' count of lines stored (a multiprocessing Value)
    every: int
    rng: random.Random
    killed: int = 2
    finished: list[str] = field(default_factory=list)  # what each finished sweep printed
    kills: int = 0
    failure: str | None = None
    running: subprocess.Popen[str] | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # phase B is over: finish
    halt: threading.Event = field(default_factory=threading.Event)  # the test failed: end now

    def has_swept(self) -> bool:
        return any("skipped" not in out for out in self.finished)

    def run(self) -> None:
        try:
            while not self.halt.is_set() and not (self.stop.is_set() and self.has_swept()):
                began = self.progress.value
                self._sweep(kill=self.kills < self.killed)
                while not self.stop.is_set() and not self.halt.is_set() and self.progress.value < began + self.every:
                    time.sleep(0.2)
        except Exception as error:  # reported by the test
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            if self.running is not None and self.running.poll() is None:
                self.running.kill()
                self.running.wait(timeout=10)

    def _sweep(self, kill: bool) -> None:
        self.running = subprocess.Popen(
            [str(WNB), "sweep", "--now", SWEEP_AT.isoformat()],
            env={**self.env, "PGAPPNAME": SWEEPER},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if kill and self._sweeping():
            time.sleep(self.rng.uniform(0.0, 0.5))
            self.running.send_signal(signal.SIGKILL)  # a sweep that finished meanwhile just ends as it was
        out, _ = self.running.communicate(timeout=120)
        if self.running.returncode == -signal.SIGKILL:
            self.kills += 1
            return
        if self.running.returncode != 0:
            raise AssertionError(f"wnb sweep exited {self.running.returncode}: {out[-500:]}")
        self.finished.append(out.strip())

    def _sweeping(self) -> bool:
        """Wait until the sweep process holds the sweep's advisory locks (True), or has ended without (False)."""
        deadline = time.monotonic() + 60
        while self.running is not None and self.running.poll() is None:
            assert time.monotonic() < deadline, "a sweep process neither swept nor ended within 60s"
            with self.engine.connect() as connection:
                if connection.exec_driver_sql(SWEEPING).scalar():
                    return True
            time.sleep(0.05)
        return False


def _post_all(
    client: httpx.Client, lines: list[str], urls: list[str], rng: random.Random, progress: Any
) -> tuple[Counter[str], int]:
    """Post `lines` in order, in batches; on any failure post the same batch again to another replica."""
    counts: Counter[str] = Counter()
    retries = 0
    for start in range(0, len(lines), BATCH):
        body = '{"events": [' + ",".join(lines[start : start + BATCH]) + "]}"
        url = rng.choice(urls)
        deadline = time.monotonic() + BATCH_LIMIT
        while True:
            try:
                answer = client.post(
                    f"{url}/v1/attendance-events", content=body, headers={"Content-Type": "application/json"}
                )
                if answer.status_code == 200:
                    counts.update(result["status"] for result in answer.json()["results"])
                    with progress.get_lock():
                        progress.value += len(answer.json()["results"])
                    break
                assert answer.status_code >= 500, answer.text  # only a server's failure is retried
            except httpx.TransportError:
                pass
            retries += 1
            assert time.monotonic() < deadline, f"a batch was not stored within {BATCH_LIMIT}s of resending"
            url = rng.choice([other for other in urls if other != url])
            time.sleep(0.05)
    return counts, retries


def _client(
    phases: dict[str, list[str]], urls: list[str], key: str, seed: int, go_on: Any, progress: Any, results: Any
) -> None:
    """Phase A's lines, then (once every client has sent phase A) phase B's; what became of them, or why not."""
    rng = random.Random(seed)
    try:
        with httpx.Client(headers={"X-API-Key": key}, timeout=60) as client:
            for phase in ("A", "B"):
                if phase == "B" and not go_on.wait(LIMIT):
                    raise AssertionError("phase B was never started")
                counts, retries = _post_all(client, phases[phase], urls, rng, progress)
                results.put((phase, dict(counts), retries, None))
    except BaseException as error:
        results.put(("failed", {}, 0, f"client {seed}: {type(error).__name__}: {error}"))
        raise


def _partition(folder: Path, parts: int) -> list[dict[str, list[str]]]:
    """Each phase's lines split by person, each person's lines in feed order (invalid rows spread by text)."""
    split: list[dict[str, list[str]]] = [{"A": [], "B": []} for _ in range(parts)]
    for phase in ("A", "B"):
        for line in (folder / f"{phase}.ndjson").read_text().splitlines():
            part = split[sum(_person(line).encode()) % parts][phase]
            part.append(line if _is_json_object(line) else json.dumps(line))
    return split


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _reference(folder: Path, url: str) -> None:
    """The same feed ingested sequentially into a fresh SQLite file: phase A, sweep, phase B, sweep."""
    reference = Service(open_database(url), load_ruleset(DEFAULT_RULES), notify=parse_addresses(NOTIFY))
    reference.import_context(read_file(folder / "context.ndjson"), origin="context.ndjson")
    for phase in ("A", "B"):
        reference.ingest(read_file(folder / f"{phase}.ndjson"), origin="api:pas")
        reference.sweep(SWEEP_AT)
    reference.db.dispose()


def _stable(value: Any) -> Any:
    """A time as SQLite stores it, so both stores' rows compare equal."""
    return value.isoformat(" ", "microseconds") if isinstance(value, datetime) else value


def _outcome(url: str) -> dict[str, Any]:
    """Events, flags, tasks, follow-ups, rejects and e-mails queued per address, on stable keys (never on ids)."""
    engine = open_database(url, create=False)
    with engine.connect() as connection:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            found = [tuple(_stable(value) for value in row) for row in connection.exec_driver_sql(sql)]
            return sorted(found, key=lambda row: tuple((value is not None, value) for value in row))

        outcome = {
            "events": rows("SELECT source, event_id, state FROM event"),
            "flags": rows("SELECT nhs_number, code, level, status FROM flag"),
            # A child's tasks; not the service's own (an `admin` task about a sweep held up by the storm).
            "tasks": rows(
                "SELECT nhs_number, service, code, status, owner_role, escalation_level, due_at FROM task "
                "WHERE nhs_number != ''"
            ),
            "follow_ups": rows(
                "SELECT source, appointment_id, nhs_number, deadline_at, status, judged_at FROM follow_up"
            ),
            "rejects": rows("SELECT source, event_id, field, reason, raw, received_count FROM reject"),
            "outbox": rows("SELECT recipient, count(*) FROM outbox GROUP BY recipient"),
        }
    engine.dispose()
    return outcome


def _object_rejects(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rejects of rows that were JSON objects, without their receipt counts."""
    return [row[:-1] for row in rows if _is_json_object(row[4])]


def _deliver_until_done(engine: Any, smtp: SmtpSettings, stop: threading.Event) -> None:
    while not stop.is_set():
        deliver(engine, smtp, datetime.now(UTC))
        time.sleep(0.2)


def _count(engine: Any, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(sql).scalar() or 0)


def _within(what: str, seconds: float, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f}s"
        time.sleep(0.2)


# ---- the test ----


def test_three_replicas_killed_at_random_while_sweeping_give_the_sequential_outcome_once(
    postgres_server: Any, feed: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    spawn = multiprocessing.get_context("spawn")
    reference_url = f"sqlite:///{tmp_path / 'sequential.db'}"
    reference = spawn.Process(target=_reference, args=(feed, reference_url))
    reference.start()  # alongside the replicated run: it needs nothing from it
    request.addfinalizer(lambda: reference.kill() if reference.is_alive() else None)
    url = postgres_server()
    engine = open_database(url)
    request.addfinalizer(engine.dispose)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    request.addfinalizer(controller.stop)
    smtp = SmtpSettings("127.0.0.1", controller.port, "wnb@trust.example", timeout=5)
    env = {
        **os.environ,
        "WNB_DATABASE_URL": url,
        "WNB_RULES_DIR": str(DEFAULT_RULES),
        "WNB_NOTIFY": NOTIFY,
        "WNB_SMTP_HOST": "127.0.0.1",
        "WNB_SMTP_PORT": str(controller.port),
        "WNB_LOG_LEVEL": "WARNING",
    }
    replicas = Replicas(env, [free_port() for _ in range(3)], tmp_path)
    chaos = random.Random(7)
    go_on, progress, results = spawn.Event(), spawn.Value("q", 0), spawn.Queue()
    deliverers_stop = threading.Event()
    deliverers = [threading.Thread(target=_deliver_until_done, args=(engine, smtp, deliverers_stop)) for _ in range(2)]
    clients: list[Any] = []
    sweeper = Sweeper(env, engine, progress, every=0, rng=random.Random(11))
    sweeping = threading.Thread(target=sweeper.run, daemon=True)
    # Kills at random points of the feed, not of the clock: a slow machine gets as many restarts, not more.
    kill_at = sorted(chaos.sample(range(EVENTS // 20, EVENTS - EVENTS // 20), KILLS))
    answers: list[tuple[str, dict[str, int], int, str | None]] = []
    try:
        for index in range(3):
            replicas.start(index)
        # While the replicas start: the children's context, the clients' key and their share of the feed.
        Service(engine, load_ruleset(DEFAULT_RULES)).import_context(read_file(feed / "context.ndjson"), "context")
        key = create_api_key(engine, "clinic-system", "pas", sources=("pas", "community-ehr"))
        parts = _partition(feed, CLIENTS)
        sweeper.every = sum(len(part["B"]) for part in parts) // 5  # about five sweeps while phase B is posted
        urls = [f"http://127.0.0.1:{port}" for port in replicas.ports]
        clients = [
            spawn.Process(target=_client, args=(lines, urls, key, number, go_on, progress, results))
            for number, lines in enumerate(parts)
        ]
        for index in range(3):
            replicas.wait_live(index)
        lap("set-up")
        for thread in deliverers:
            thread.start()
        for process in clients:
            process.start()
        storm_ends = time.monotonic() + LIMIT
        while len([answer for answer in answers if answer[0] == "B"]) < CLIENTS:
            time.sleep(0.2)
            while not results.empty():
                answers.append(results.get(timeout=5))
            failures = [answer[3] for answer in answers if answer[3]]
            assert not failures, failures
            dead = [process.exitcode for process in clients if process.exitcode not in (None, 0)]
            assert not dead, f"a client process died: exit codes {dead}"
            assert sweeper.failure is None, f"a sweep failed: {sweeper.failure}"
            assert time.monotonic() < storm_ends, f"the clients did not finish within {LIMIT:.0f}s"
            if not go_on.is_set() and len([answer for answer in answers if answer[0] == "A"]) == CLIENTS:
                lap("phase A")
                go_on.set()
                sweeping.start()
            if kill_at and progress.value >= kill_at[0]:
                kill_at.pop(0)
                victim = chaos.randrange(3)
                replicas.kill(victim)
                time.sleep(chaos.uniform(0.0, 1.0))
                replicas.start(victim)
                replicas.wait_live(victim)
        lap("phase B")
        for process in clients:
            process.join(timeout=30)
            assert process.exitcode == 0, f"a client exited with {process.exitcode}"
        sweeper.stop.set()
        sweeping.join(timeout=180)
        assert not sweeping.is_alive(), "the last sweep did not finish within 180s"
        assert sweeper.failure is None, sweeper.failure
        mid_run = {
            "judged": _count(engine, "SELECT count(*) FROM follow_up WHERE status = 'judged'"),
            "escalated": _count(engine, "SELECT count(*) FROM task_history WHERE action = 'escalated'"),
        }
        final = Service(engine, load_ruleset(DEFAULT_RULES), notify=parse_addresses(NOTIFY)).sweep(SWEEP_AT)
    finally:
        for process in clients:
            if process.is_alive():
                process.kill()
        sweeper.halt.set()
        deliverers_stop.set()
        for thread in deliverers:
            thread.join(timeout=30)
        replicas.stop_all()
    # The sweeps at SWEEP_AT queued their e-mails then: deliver them as of then, now no replica is sending.
    _within("the outbox emptied", 120, lambda: not deliver(engine, smtp, SWEEP_AT)["sent"])
    lap("final sweep and e-mail")
    reference.join(timeout=300)
    assert reference.exitcode == 0, f"the sequential reference run failed or took over 300s ({reference.exitcode})"
    lap("waiting for the reference")

    replicated, sequential = _outcome(url), _outcome(reference_url)
    posted = Counter[str]()
    for _, counts, _, _ in answers:
        posted.update(counts)
    print(
        f"\n{EVENTS} events by {CLIENTS} clients to 3 replicas; {replicas.kills} replica and {sweeper.kills} sweep "
        f"SIGKILLs; sweeps finished mid-run {dict(Counter(sweeper.finished))}, then {dict(final)}; mid-run {mid_run}; "
        f"{sum(answer[2] for answer in answers)} batches resent; answers {dict(posted)}; {len(mailbox.ids)} e-mails; "
        f"seconds {timings}"
    )
    assert len(replicated["events"]) == len({(source, event_id) for source, event_id, _ in replicated["events"]})
    for part in ("events", "flags", "tasks", "follow_ups", "outbox"):
        assert replicated[part] == sequential[part], f"the replicated {part} differ from the sequential run's"
    # One reject per distinct bad row (a line that is not JSON reaches the API as a JSON string, so only the
    # object rows compare field by field); a batch resent after a failure counts its bad rows again.
    assert len(replicated["rejects"]) == len(sequential["rejects"])
    assert _object_rejects(replicated["rejects"]) == _object_rejects(sequential["rejects"])
    assert sum(row[-1] for row in replicated["rejects"]) >= sum(row[-1] for row in sequential["rejects"])
    # The sweeps under the storm did the work: the final one found nothing left.
    assert mid_run["judged"] > 0 and mid_run["escalated"] > 0, mid_run
    assert final["follow_ups_judged"] == final["follow_ups_void"] == final["escalated"] == 0, final
    assert len(mailbox.ids) == len(set(mailbox.ids)), "an e-mail was delivered twice"
    with engine.connect() as connection:
        statuses = dict(connection.exec_driver_sql("SELECT status, count(*) FROM outbox GROUP BY status").all())
        verification = audit.verify(connection)
    engine.dispose()
    # A replica killed mid-send leaves its row `sending` (then `uncertain` after notify.SENDING_GRACE), never resent.
    interrupted = statuses.get("uncertain", 0) + statuses.get("sending", 0)
    assert statuses.get("sent", 0) <= len(mailbox.ids) <= statuses.get("sent", 0) + interrupted
    assert set(statuses) <= {"sent", "uncertain", "sending"}, statuses
    assert verification.ok, verification.problem
    assert replicas.kills >= KILLS // 2, f"only {replicas.kills} replicas were killed"
    assert sweeper.kills == sweeper.killed, "the sweeps were not killed mid-sweep"
