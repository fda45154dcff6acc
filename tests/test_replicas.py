"""Three real `wnb serve` replicas on one PostgreSQL database, killed with SIGKILL and restarted while several
client processes post a synthetic feed with duplicates and corrections: afterwards every event is stored once,
flags and tasks equal those of the same feed ingested sequentially, no e-mail went twice, the audit chain
verifies. Also: a lost database answers 503 with Retry-After, and the replica recovers without a restart."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from wnb.ingest import read_file
from wnb.notify import SmtpSettings, deliver, parse_addresses
from wnb.ruleset import load_ruleset
from wnb.service import Service
from wnb.store.db import open_database

from .conftest import DEFAULT_RULES, ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WNB = Path(sys.executable).parent / "wnb"
NOTIFY = "safeguarding-nurse=sg@trust.example"  # red flags, and tasks escalated to safeguarding nurses
EVENTS = int(os.environ.get("WNB_TEST_REPLICA_EVENTS", "20000"))
CHILDREN = 3_000
CLIENTS = 4
BATCH = 25
SHIFT = timedelta(days=4 * 364)  # the synthetic year moved past today: the replicas' sweeps judge nothing early
FINAL_SWEEP = "2031-01-01T00:00:00+00:00"  # after the shifted year: every deadline and due time has passed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _shifted(line: str) -> str:
    """The event moved SHIFT later (invalid rows stay as they are: they are rejected either way)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(event, dict):
        return line
    for name in ("appointment_at", "recorded_at"):
        value = event.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                event[name] = (datetime.fromisoformat(value) + SHIFT).isoformat()
    return json.dumps(event)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic synthetic feed (with duplicates, corrections, stale and invalid rows), shifted forward."""
    sys.path.insert(0, str(ROOT))
    from bench.synthetic import generate

    folder = tmp_path_factory.mktemp("feed")
    generate(events=EVENTS, children=CHILDREN, seed=5, out=folder, progress=False)
    lines = (folder / "events.ndjson").read_text().splitlines()
    (folder / "shifted.ndjson").write_text("\n".join(_shifted(line) for line in lines) + "\n")
    return folder


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
        self.processes[index].wait()
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
                process.wait()


def _client(lines: list[str], urls: list[str], key: str, seed: int, results: Any) -> None:
    """Post `lines` in order, in batches; on any failure post the same batch again to another replica."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    retries = 0
    with httpx.Client(headers={"X-API-Key": key}, timeout=60) as client:
        for start in range(0, len(lines), BATCH):
            body = '{"events": [' + ",".join(lines[start : start + BATCH]) + "]}"
            url = rng.choice(urls)
            while True:
                try:
                    answer = client.post(
                        f"{url}/v1/attendance-events", content=body, headers={"Content-Type": "application/json"}
                    )
                    if answer.status_code == 200:
                        counts.update(result["status"] for result in answer.json()["results"])
                        break
                    assert answer.status_code >= 500, answer.text  # only a server's failure is retried
                except httpx.TransportError:
                    pass
                retries += 1
                url = rng.choice([other for other in urls if other != url])
                time.sleep(0.05)
    results.put((dict(counts), retries))


def _partition(path: Path, parts: int) -> list[list[str]]:
    """Lines split by person, each person's lines in feed order (invalid rows spread by their text)."""
    split: list[list[str]] = [[] for _ in range(parts)]
    for line in path.read_text().splitlines():
        try:
            person = str(json.loads(line).get("nhs_number"))
        except (json.JSONDecodeError, AttributeError):
            person = line
        split[sum(person.encode()) % parts].append(line if _is_json_object(line) else json.dumps(line))
    return split


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _wnb(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(WNB), *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"wnb {' '.join(args)}: {done.stderr}"
    return done.stdout


def _stable(value: Any) -> Any:
    """A time as SQLite stores it, so both stores' rows compare equal."""
    return value.isoformat(" ", "microseconds") if isinstance(value, datetime) else value


def _outcome(url: str) -> dict[str, Any]:
    """Events, flags, tasks and e-mails queued per address, on stable keys (never on ids)."""
    engine = open_database(url, create=False)
    with engine.connect() as connection:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return sorted(tuple(_stable(value) for value in row) for row in connection.exec_driver_sql(sql))

        outcome = {
            "events": rows("SELECT source, event_id, state FROM event"),
            "flags": rows("SELECT nhs_number, code, level, status FROM flag"),
            "tasks": rows("SELECT nhs_number, service, code, status, owner_role, escalation_level, due_at FROM task"),
            "outbox": rows("SELECT recipient, count(*) FROM outbox GROUP BY recipient"),
        }
    engine.dispose()
    return outcome


def _deliver_until_done(engine: Any, smtp: SmtpSettings, stop: threading.Event) -> None:
    while not stop.is_set():
        deliver(engine, smtp, datetime.now(UTC))
        time.sleep(0.2)


def test_three_replicas_killed_at_random_give_the_sequential_outcome_once(
    postgres_server: Any, feed: Path, tmp_path: Path
) -> None:
    url = postgres_server()
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
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
    _wnb(env, "db", "upgrade")
    _wnb(env, "context", "import", str(feed / "context.ndjson"))
    key = _wnb(env, "keys", "create", "--role", "clinic-system", "--name", "pas").strip()
    replicas = Replicas(env, [_free_port() for _ in range(3)], tmp_path)
    for index in range(3):
        replicas.start(index)
    for index in range(3):
        replicas.wait_live(index)
    urls = [f"http://127.0.0.1:{port}" for port in replicas.ports]

    deliverers_stop = threading.Event()
    engine = open_database(url, create=False)
    deliverers = [threading.Thread(target=_deliver_until_done, args=(engine, smtp, deliverers_stop)) for _ in range(2)]
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    clients = [
        spawn.Process(target=_client, args=(lines, urls, key, number, results))
        for number, lines in enumerate(_partition(feed / "shifted.ndjson", CLIENTS))
    ]
    started = time.monotonic()
    try:
        for thread in deliverers:
            thread.start()
        for process in clients:
            process.start()
        chaos = random.Random(7)
        while any(process.is_alive() for process in clients):
            time.sleep(chaos.uniform(3.0, 6.0))  # a restart costs seconds of CPU: kill often, not constantly
            victim = chaos.randrange(3)
            replicas.kill(victim)
            time.sleep(chaos.uniform(0.0, 1.0))
            replicas.start(victim)
            replicas.wait_live(victim)
            assert time.monotonic() - started < 600, "the clients did not finish within 10 minutes"
        for process in clients:
            process.join()
            assert process.exitcode == 0
        answers = [results.get(timeout=10) for _ in clients]
        _wnb(env, "sweep", "--now", FINAL_SWEEP)
        time.sleep(1)  # a last delivery round after the final sweep's escalations
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if not connection.exec_driver_sql("SELECT count(*) FROM outbox WHERE status = 'pending'").scalar():
                    break
            time.sleep(0.5)
    finally:
        for process in clients:
            if process.is_alive():
                process.kill()
        deliverers_stop.set()
        for thread in deliverers:
            if thread.is_alive():
                thread.join()
        replicas.stop_all()
        controller.stop()

    reference_url = f"sqlite:///{tmp_path / 'sequential.db'}"
    reference = Service(open_database(reference_url), load_ruleset(DEFAULT_RULES), notify=parse_addresses(NOTIFY))
    reference.import_context(read_file(feed / "context.ndjson"), origin="context.ndjson")
    reference.ingest(read_file(feed / "shifted.ndjson"), origin="shifted.ndjson")
    reference.sweep(datetime.fromisoformat(FINAL_SWEEP))
    reference.db.dispose()

    replicated, sequential = _outcome(url), _outcome(reference_url)
    posted = Counter[str]()
    for counts, _ in answers:
        posted.update(counts)
    print(
        f"\n{EVENTS} events by {CLIENTS} clients to 3 replicas in {time.monotonic() - started:.0f}s; "
        f"{replicas.kills} SIGKILLs; {sum(retries for _, retries in answers)} batches retried; answers {dict(posted)}; "
        f"{len(mailbox.ids)} e-mails"
    )
    assert len(replicated["events"]) == len({(source, event_id) for source, event_id, _ in replicated["events"]})
    assert replicated["events"] == sequential["events"]
    assert replicated["flags"] == sequential["flags"]
    assert replicated["tasks"] == sequential["tasks"]
    assert replicated["outbox"] == sequential["outbox"]
    assert len(mailbox.ids) == len(set(mailbox.ids)), "an e-mail was delivered twice"
    with engine.connect() as connection:
        statuses = dict(connection.exec_driver_sql("SELECT status, count(*) FROM outbox GROUP BY status").all())
    engine.dispose()
    # A replica killed mid-send leaves its row `sending` (then `uncertain` after notify.SENDING_GRACE), never resent.
    interrupted = statuses.get("uncertain", 0) + statuses.get("sending", 0)
    assert statuses.get("sent", 0) <= len(mailbox.ids) <= statuses.get("sent", 0) + interrupted
    assert set(statuses) <= {"sent", "uncertain", "sending"}, statuses
    _wnb(env, "audit", "verify")  # exits 1 naming the first bad record otherwise
    assert replicas.kills >= 3
