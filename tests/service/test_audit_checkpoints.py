"""Signed checkpoints of the audit chain: `wnb audit keygen` makes the pair, `wnb audit checkpoint` writes a
signed head into a folder for write-once storage, an auditor with only the public key checks the chain
against them (`wnb audit verify --checkpoints DIR --public-key FILE`), and `wnb serve` writes them itself."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import ROOT, FixedClock
from tests.factories import Ran, run_wnb
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.service.audit_checkpoints import CheckpointWriter, generate_key_pair, load_private_key
from wnb.service.scheduler import Scheduler
from wnb.store import audit, listing
from wnb.store.tables import AuditHeadRow

STORES = ("sqlite", "postgres")
FIXTURES = ROOT / "fixtures"
RULES = {"WNB_RULES_DIR": str(ROOT / "rules" / "default")}


@pytest.fixture
def site(tmp_path: Path, ruleset: Ruleset, clock: FixedClock) -> dict[str, str]:
    """A SQLite database with the sample feed ingested, a signing key pair, and the folder for checkpoints."""
    url = f"sqlite:///{tmp_path / 'wnb.db'}"
    engine = open_database(url)
    service = Service(engine, ruleset, clock)
    service.import_context(read_file(FIXTURES / "context.ndjson"), origin="context.ndjson")
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    engine.dispose()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    generate_key_pair(secrets)
    (tmp_path / "worm").mkdir()
    return {
        "WNB_DATABASE_URL": url,
        "WNB_SECRETS_DIR": str(secrets),
        "WNB_AUDIT_CHECKPOINT_DIR": str(tmp_path / "worm"),
    }


def auditor(tmp_path: Path, site: dict[str, str]) -> Ran:
    """`wnb audit verify` as an external auditor runs it: the public key and the checkpoints, no secret."""
    public = Path(site["WNB_SECRETS_DIR"]) / "audit-signing-key.pub"
    return run_wnb(
        tmp_path,
        "audit",
        "verify",
        "--checkpoints",
        site["WNB_AUDIT_CHECKPOINT_DIR"],
        "--public-key",
        str(public),
        env={**RULES, "WNB_DATABASE_URL": site["WNB_DATABASE_URL"], "WNB_AUDIT_KEY": None},
    )


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_replaces_one(tmp_path: Path) -> None:
    made = run_wnb(tmp_path, "audit", "keygen", str(tmp_path), env=RULES)
    assert made.returncode == 0, made.stderr
    private = tmp_path / "WNB_AUDIT_SIGNING_KEY"
    first = private.read_bytes()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "audit-signing-key.pub").read_text()
    load_private_key(private.read_text())

    again = run_wnb(tmp_path, "audit", "keygen", str(tmp_path), env=RULES)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert private.read_bytes() == first


def test_a_checkpoint_is_a_signed_head_an_auditor_checks_with_the_public_key_alone(
    tmp_path: Path, site: dict[str, str]
) -> None:
    taken = run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site})
    assert taken.returncode == 0, taken.stderr
    (path,) = Path(site["WNB_AUDIT_CHECKPOINT_DIR"]).glob("audit-checkpoint-*.json")
    content = json.loads(path.read_text())
    with sqlite3.connect(site["WNB_DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        head = connection.execute("SELECT seq, hash FROM audit_head").fetchone()
    assert (content["seq"], content["hash"]) == tuple(head)
    assert {"at", "signature", "key", "format"} <= set(content)

    checked = auditor(tmp_path, site)
    assert checked.returncode == 0, checked.stderr
    assert f"audit log intact: {head[0]} records verified" in checked.stdout
    assert "MACs not checked (no WNB_AUDIT_KEY)" in checked.stdout
    assert f"1 checkpoint matched, the newest at record {head[0]}" in checked.stdout


def test_an_auditor_finds_a_tail_cut_off_and_the_head_moved_by_the_checkpoint(
    tmp_path: Path, site: dict[str, str]
) -> None:
    assert run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site}).returncode == 0
    with sqlite3.connect(site["WNB_DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        (last,) = connection.execute("SELECT max(seq) FROM audit").fetchone()
        connection.execute("DELETE FROM audit WHERE seq > ?", (last - 2,))
        connection.execute(
            "UPDATE audit_head SET seq = ?, hash = (SELECT hash FROM audit WHERE seq = ?)", (last - 2, last - 2)
        )

    checked = auditor(tmp_path, site)
    assert checked.returncode == 1
    assert f"the log was truncated: it ends at record {last - 2} but checkpoint audit-checkpoint-" in checked.stderr
    assert f"saw record {last}" in checked.stderr


def test_a_checkpoint_changed_in_its_folder_is_named_as_forged(tmp_path: Path, site: dict[str, str]) -> None:
    assert run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site}).returncode == 0
    (path,) = Path(site["WNB_AUDIT_CHECKPOINT_DIR"]).glob("audit-checkpoint-*.json")
    content = json.loads(path.read_text())
    path.write_text(json.dumps({**content, "seq": content["seq"] - 1}))

    checked = auditor(tmp_path, site)
    assert checked.returncode == 1
    assert f"checkpoint {path.name}: its signature does not match the public key: forged or changed" in checked.stderr


def test_verify_checks_the_checkpoints_of_another_key_as_forged(tmp_path: Path, site: dict[str, str]) -> None:
    assert run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site}).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    generate_key_pair(other)

    checked = run_wnb(
        tmp_path,
        "audit",
        "verify",
        "--checkpoints",
        site["WNB_AUDIT_CHECKPOINT_DIR"],
        "--public-key",
        str(other / "audit-signing-key.pub"),
        env={**RULES, "WNB_DATABASE_URL": site["WNB_DATABASE_URL"]},
    )
    assert checked.returncode == 1
    assert "its signature does not match the public key" in checked.stderr


def test_checkpoint_names_the_settings_it_needs(tmp_path: Path, site: dict[str, str]) -> None:
    no_folder = run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site, "WNB_AUDIT_CHECKPOINT_DIR": None})
    assert no_folder.returncode == 1
    assert "set WNB_AUDIT_CHECKPOINT_DIR or give --to DIR" in no_folder.stderr
    no_key = run_wnb(tmp_path, "audit", "checkpoint", env={**RULES, **site, "WNB_SECRETS_DIR": None})
    assert no_key.returncode == 1
    assert "WNB_AUDIT_SIGNING_KEY is not set: make a key pair with `wnb audit keygen DIR`" in no_key.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    to = run_wnb(tmp_path, "audit", "checkpoint", "--to", str(elsewhere), env={**RULES, **site})
    assert to.returncode == 0, to.stderr
    assert len(list(elsewhere.glob("audit-checkpoint-*.json"))) == 1


def test_each_checkpoint_verifies_only_the_records_since_the_last_one(
    db_url: str, ruleset: Ruleset, clock: FixedClock, tmp_path: Path
) -> None:
    engine = open_database(db_url)
    service = Service(engine, ruleset, clock)
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    keys = tmp_path / "keys"
    keys.mkdir()
    private, _ = generate_key_pair(keys)
    writer = CheckpointWriter(engine, load_private_key(private.read_text()), tmp_path)
    writer.take(datetime(2026, 3, 2, 12, tzinfo=UTC))
    first = writer.last
    service.sweep(datetime(2026, 3, 18, 9, tzinfo=UTC))

    again = CheckpointWriter(engine, load_private_key(private.read_text()), tmp_path)  # a restarted serve
    again.take(datetime(2026, 3, 18, 9, 5, tzinfo=UTC))

    assert first is not None and again.last is not None and again.last.seq > first.seq
    with engine.connect() as connection:
        started_after = audit.verify(connection, since=first)
        head = connection.execute(select(AuditHeadRow.seq)).scalar_one()  # type: ignore[call-overload]
    assert started_after.ok and started_after.records == again.last.seq - first.seq
    assert head == again.last.seq
    assert len(list(tmp_path.glob("audit-checkpoint-*.json"))) == 2
    engine.dispose()


def test_the_scheduler_writes_a_checkpoint_at_start_and_opens_an_admin_task_when_the_log_is_broken(
    db_url: str, ruleset: Ruleset, clock: FixedClock, tmp_path: Path
) -> None:
    engine = open_database(db_url)
    service = Service(engine, ruleset, clock)
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    private, _ = generate_key_pair(tmp_path)
    worm = tmp_path / "worm"
    worm.mkdir()
    writer = CheckpointWriter(engine, load_private_key(private.read_text()), worm)
    scheduler = Scheduler(service, sweep_minutes=60, checkpoints=writer, checkpoint_minutes=60)
    assert scheduler._scheduler.get_job("audit-checkpoint") is not None

    written = scheduler.checkpoint()
    assert written is not None and written.parent == worm
    service.sweep(datetime(2026, 3, 18, 9, tzinfo=UTC))
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE audit SET actor = 'user:mallory' WHERE seq = (SELECT max(seq) FROM audit)")
    assert scheduler.checkpoint() is None
    with engine.connect() as connection:
        tasks = [task for task in listing.tasks(connection) if task["code"] == "audit-checkpoint-refused"]
    assert len(tasks) == 1
    assert len(list(worm.glob("audit-checkpoint-*.json"))) == 1  # none written for the broken log
    engine.dispose()


def test_the_signing_key_may_be_its_pem_body_on_one_line_as_an_environment_variable_holds_it(
    tmp_path: Path, site: dict[str, str]
) -> None:
    pem = (Path(site["WNB_SECRETS_DIR"]) / "WNB_AUDIT_SIGNING_KEY").read_text()
    one_line = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    env = {**RULES, **site, "WNB_SECRETS_DIR": None, "WNB_AUDIT_SIGNING_KEY": one_line}

    taken = run_wnb(tmp_path, "audit", "checkpoint", env=env)
    assert taken.returncode == 0, taken.stderr
    assert auditor(tmp_path, site).returncode == 0
    bad = run_wnb(tmp_path, "audit", "checkpoint", env={**env, "WNB_AUDIT_SIGNING_KEY": "not a key!"})
    assert bad.returncode == 1
    assert "WNB_AUDIT_SIGNING_KEY: is neither a PEM private key nor its body on one line" in bad.stderr


def test_plain_verify_compares_with_the_checkpoints_wnb_wrote_and_finds_macs_stripped_and_hashes_redone(
    tmp_path: Path, site: dict[str, str]
) -> None:
    env = {**RULES, **site}
    assert run_wnb(tmp_path, "audit", "verify", env=env).returncode == 0  # no checkpoint yet: nothing to compare
    assert run_wnb(tmp_path, "audit", "checkpoint", env=env).returncode == 0
    assert "1 checkpoint matched" in run_wnb(tmp_path, "audit", "verify", env=env).stdout
    # The whole log made to look as if written before audit keys: every MAC gone, every hash recomputed.
    with sqlite3.connect(site["WNB_DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        connection.row_factory = sqlite3.Row
        previous = audit.GENESIS
        for row in connection.execute("SELECT * FROM audit ORDER BY seq").fetchall():
            record = dict(row)
            record.update(
                key_id=None,
                prev_hash=previous,
                at=datetime.fromisoformat(record["at"]).replace(tzinfo=UTC),
                subject=json.loads(record["subject"]),
                payload=json.loads(record["payload"]),
            )
            previous = audit.record_hash(record)
            connection.execute(
                "UPDATE audit SET key_id = NULL, mac = NULL, prev_hash = ?, hash = ? WHERE seq = ?",
                (record["prev_hash"], previous, record["seq"]),
            )
        connection.execute("UPDATE audit_head SET key_id = NULL, mac = NULL, hash = ?", (previous,))

    checked = run_wnb(tmp_path, "audit", "verify", env=env)
    assert checked.returncode == 1
    assert "differs from checkpoint audit-checkpoint-" in checked.stderr
