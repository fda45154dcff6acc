"""A real PostgreSQL restart under a real `wnb serve`: a private cluster on a free loopback port (never the shared
server) is restarted, stopped for a few seconds and crashed while a client posts events. The client only ever
gets an answer it can retry (503 with Retry-After, or another 5xx), never a silent loss; after resending,
every event is stored and evaluated exactly once; the replica recovers without being restarted, and
/health/ready says 503 while the database is down and 200 once it is back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import DEFAULT_RULES
from tests.server import free_port
from tests.service.test_service import event
from tests.store.test_concurrency import CHILDREN
from wnb.database import open_database
from wnb.store.accounts import create_api_key

pytestmark = pytest.mark.slow

WNB = Path(sys.executable).parent / "wnb"
WAIT = 60.0  # the longest any one step may take before the test fails, saying which step


def _postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian's layout), or None."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    """A PostgreSQL cluster of our own in a temporary folder, run by the `postgres` user when we are root."""

    bin: Path
    folder: Path
    port: int = field(default_factory=free_port)

    def _run(self, *args: str, timeout: float = WAIT) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_owner, *args], cwd=self.folder, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}"

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "-A", "trust", "-E",
                  "UTF8", "--no-sync")  # fmt: skip

    def pg_ctl(self, action: str, *options: str) -> None:
        server = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(str(self.bin / "pg_ctl"), action, "-D", str(self.folder / "data"), "-l",
                  str(self.folder / "server.log"), "-o", server, "-w", "-t", str(int(WAIT)), *options)  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install postgresql-15)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses root and cannot be run as `postgres`")
    folder = Path(tempfile.mkdtemp(prefix="wnb-pg-"))
    if os.geteuid() == 0:
        owner = subprocess.run(["id", "-u", "postgres"], capture_output=True, text=True, check=False)
        if owner.returncode != 0:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no `postgres` user to own the cluster")
        os.chown(folder, int(owner.stdout), int(subprocess.check_output(["id", "-g", "postgres"], text=True)))
    made = Cluster(binaries, folder)
    try:
        made.init()
        made.pg_ctl("start")
        with psycopg.connect(made.url("postgres").replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("CREATE DATABASE wnb")
        yield made
    finally:
        with_server = (folder / "data" / "postmaster.pid").exists()
        if with_server:
            made.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Sender:
    """Posts numbered events one at a time, each until it is answered 200, keeping every answer it got."""

    url: str
    key: str
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status or 0 for no answer, Retry-After)
    final: dict[str, str] = field(default_factory=dict)  # event id -> its last answer's status
    failure: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def accepted(self) -> int:
        return len(self.final)

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=WAIT) as client:
                number = 0
                while not self.stop.is_set():
                    self._send(client, number)
                    number += 1
        except Exception as error:  # reported by the test, with the event it failed on
            self.failure = f"{type(error).__name__}: {error}"

    def _send(self, client: httpx.Client, number: int) -> None:
        data = event(f"r{number}", appointment_id=f"ra{number}", nhs_number=CHILDREN[number % len(CHILDREN)])
        deadline = time.monotonic() + WAIT
        while True:
            try:
                answer = client.post("/v1/attendance-events", json=data)
                self.answers.append((answer.status_code, answer.headers.get("Retry-After")))
                if answer.status_code == 200:
                    self.final[data["event_id"]] = answer.json()["status"]
                    return
                assert answer.status_code >= 500, f"event r{number}: {answer.status_code} {answer.text}"
            except httpx.TransportError:
                self.answers.append((0, None))
            assert time.monotonic() < deadline, f"event r{number} was not stored within {WAIT}s of retrying"
            time.sleep(0.2)


def _wait(what: str, condition: Callable[[], bool], seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.05)


def _ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/health/ready", timeout=10).status_code
    except httpx.TransportError:
        return 0


def test_a_real_database_restart_loses_and_doubles_nothing_and_the_replica_recovers_by_itself(
    cluster: Cluster, tmp_path: Path
) -> None:
    database = cluster.url("wnb")
    engine = open_database(database)
    key = create_api_key(engine, "clinic-system", "pas", sources=("pas", "community-ehr"))
    port = free_port()
    env = {**os.environ, "WNB_DATABASE_URL": database, "WNB_RULES_DIR": str(DEFAULT_RULES), "WNB_LOG_LEVEL": "WARNING"}
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen([str(WNB), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    sender = Sender(url, key)
    thread = threading.Thread(target=sender.run, daemon=True)
    try:
        _wait("wnb serve answering /health/ready", lambda: _ready(url) == 200)
        thread.start()

        def more(count: int) -> None:
            target = sender.accepted() + count
            _wait(f"{count} more events stored", lambda: sender.accepted() >= target or sender.failure is not None)
            assert sender.failure is None, sender.failure

        more(10)
        cluster.pg_ctl("restart", "-m", "fast")  # a clean restart: sessions ended, server back at once
        more(10)
        cluster.pg_ctl("stop", "-m", "fast")
        down = time.monotonic()
        while_down = []
        while time.monotonic() - down < 4:  # the database stays away for a few seconds
            while_down.append(_ready(url))
            time.sleep(0.25)
        cluster.pg_ctl("start")
        _wait("/health/ready back to 200 after the database started", lambda: _ready(url) == 200)
        more(10)
        cluster.pg_ctl("restart", "-m", "immediate")  # a crash: the server recovers from its WAL
        more(10)
    finally:
        sender.stop.set()
        thread.join(timeout=WAIT)
        still_running = serve.poll() is None
        serve.terminate()
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert not thread.is_alive(), "the client did not finish its last event"
    assert sender.failure is None, sender.failure
    assert still_running, f"wnb serve exited during the restarts: see {tmp_path / 'serve.log'}"
    assert while_down and set(while_down) == {503}, f"/health/ready while the database was down: {while_down}"

    refused = [answer for answer in sender.answers if answer[0] != 200]
    print(
        f"\n{len(sender.final)} events; answers {Counter(status for status, _ in sender.answers)}; ready {while_down}"
    )
    assert any(status == 503 for status, _ in refused), "no request met the database down: the test proved nothing"
    assert all(retry_after for status, retry_after in refused if status == 503), "a 503 without Retry-After"
    assert all(status >= 500 for status, _ in refused), refused  # no transport error: the process stayed up
    assert set(sender.final.values()) <= {"accepted", "duplicate"}  # duplicate: a lost answer to a commit

    with engine.connect() as connection:
        stored = dict(connection.exec_driver_sql("SELECT event_id, count(*) FROM event GROUP BY event_id").all())
        evaluations = connection.exec_driver_sql("SELECT count(*) FROM audit WHERE action = 'evaluation'").scalar()
    engine.dispose()
    assert stored == dict.fromkeys(sender.final, 1), "an event was lost or stored twice"
    assert evaluations == len(sender.final), "an event was evaluated twice (or not at all)"
    verified = subprocess.run(
        [str(WNB), "audit", "verify"], env=env, capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
