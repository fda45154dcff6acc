"""Audit keys: each record and the head carry an HMAC with WNB_AUDIT_KEY; keys rotate by id; a log written
before wnb had keys keeps its records and carries on keyed after an `audit_rekeyed` record; production
refuses to write or verify the log without the key, naming the setting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from tests.conftest import ROOT, FixedClock
from tests.factories import run_wnb
from wnb.core.errors import WnbError
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.settings import Settings, load_settings, parse_audit_keys
from wnb.store import audit
from wnb.store.audit_keys import AuditKeys
from wnb.store.db import writing
from wnb.store.schema import alembic_config
from wnb.store.tables import AuditRow

STORES = ("sqlite", "postgres")
FIXTURES = ROOT / "fixtures"
RULES = {"WNB_RULES_DIR": str(ROOT / "rules" / "default")}
OLD = "k1:" + "1" * 40
NEW = "k2:" + "2" * 40
_audit = AuditRow.__table__  # type: ignore[attr-defined]


def ingest(db_url: str, ruleset: Ruleset, clock: FixedClock, keys: AuditKeys, feed: str) -> None:
    engine = open_database(db_url, audit_keys=keys)
    Service(engine, ruleset, clock).ingest(read_file(FIXTURES / feed), origin=feed)
    engine.dispose()


def verified(db_url: str, keys: AuditKeys) -> audit.Verification:
    engine = open_database(db_url, audit_keys=keys)
    with engine.connect() as connection:
        result = audit.verify(connection)
    engine.dispose()
    return result


def key_ids(db_url: str) -> list[str | None]:
    engine = open_database(db_url, create=False)
    with engine.connect() as connection:
        found = list(connection.execute(select(_audit.c.key_id).order_by(_audit.c.seq)).scalars())
    engine.dispose()
    return found


def test_every_record_of_a_new_log_carries_the_current_key_id_and_verifies(
    db_url: str, ruleset: Ruleset, clock: FixedClock
) -> None:
    ingest(db_url, ruleset, clock, AuditKeys.of(parse_audit_keys(OLD)), "feed-1-pas-2026-03.ndjson")

    assert set(key_ids(db_url)) == {"k1"}
    result = verified(db_url, AuditKeys.of(parse_audit_keys(OLD)))
    assert result.ok and result.keyed and result.unkeyed == 0


def test_a_rotated_key_writes_new_records_and_the_old_key_still_verifies_the_old_ones(
    db_url: str, ruleset: Ruleset, clock: FixedClock
) -> None:
    ingest(db_url, ruleset, clock, AuditKeys.of(parse_audit_keys(OLD)), "feed-1-pas-2026-03.ndjson")
    rotated = AuditKeys.of(parse_audit_keys(f"{NEW},{OLD}"))
    ingest(db_url, ruleset, clock, rotated, "feed-2-community-2026-03.csv")

    ids = key_ids(db_url)
    assert ids[0] == "k1" and ids[-1] == "k2" and ids == sorted(ids)
    assert verified(db_url, rotated).ok
    dropped = verified(db_url, AuditKeys.of(parse_audit_keys(NEW)))  # the old key left out of the setting
    assert not dropped.ok
    assert dropped.problem == (
        "record 1 names audit key 'k1', which WNB_AUDIT_KEY does not hold "
        "(keep retired keys after the current one, so old records still verify)"
    )


def test_a_wrong_key_finds_every_record_unauthenticated(db_url: str, ruleset: Ruleset, clock: FixedClock) -> None:
    ingest(db_url, ruleset, clock, AuditKeys.of(parse_audit_keys(OLD)), "feed-1-pas-2026-03.ndjson")

    result = verified(db_url, AuditKeys.of(parse_audit_keys("k1:" + "9" * 40)))
    assert not result.ok
    assert result.problem is not None and result.problem.startswith("record 1 is not authenticated by audit key 'k1'")


def test_a_log_written_before_keys_carries_on_keyed_after_an_audit_rekeyed_record(
    db_url: str, ruleset: Ruleset, clock: FixedClock
) -> None:
    ingest(db_url, ruleset, clock, AuditKeys(), "feed-1-pas-2026-03.ndjson")  # as wnb wrote before audit keys
    before = key_ids(db_url)
    assert set(before) == {None}
    keys = AuditKeys.of(parse_audit_keys(OLD))
    ingest(db_url, ruleset, clock, keys, "feed-2-community-2026-03.csv")

    engine = open_database(db_url, audit_keys=keys)
    with engine.connect() as connection:
        (switch,) = audit.records_for(connection, [len(before) + 1])
        result = audit.verify(connection)
    engine.dispose()
    assert switch["action"] == "audit_rekeyed" and switch["key_id"] == "k1"
    assert switch["payload"]["records_before"] == len(before)
    assert set(key_ids(db_url)[len(before) :]) == {"k1"}
    assert result.ok, result.problem
    assert result.unkeyed == len(before)


def test_the_upgrade_to_audit_keys_keeps_the_old_records_and_db_upgrade_switches_and_checkpoints(
    tmp_path: Path, ruleset: Ruleset, clock: FixedClock
) -> None:
    url = f"sqlite:///{tmp_path / 'wnb.db'}"
    ingest(url, ruleset, clock, AuditKeys(), "feed-1-pas-2026-03.ndjson")
    engine = open_database(url, create=False)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")  # as the database was before this change
    with engine.connect() as connection:
        old = connection.exec_driver_sql("SELECT seq, hash FROM audit ORDER BY seq").all()
    engine.dispose()
    keys = run_wnb(tmp_path, "audit", "keygen", str(tmp_path), env=RULES)
    assert keys.returncode == 0, keys.stderr
    worm = tmp_path / "worm"
    worm.mkdir()
    env = {
        **RULES,
        "WNB_DATABASE_URL": url,
        "WNB_AUDIT_KEY": OLD,
        "WNB_SECRETS_DIR": str(tmp_path),  # WNB_AUDIT_SIGNING_KEY is a file there
        "WNB_AUDIT_CHECKPOINT_DIR": str(worm),
    }

    upgraded = run_wnb(tmp_path, "db", "upgrade", env=env)

    assert upgraded.returncode == 0, upgraded.stderr
    assert "an audit_rekeyed record marks the switch" in upgraded.stdout
    assert "checkpoint of the switch written" in upgraded.stdout
    (checkpoint,) = worm.glob("audit-checkpoint-*.json")
    assert checkpoint.name.startswith(f"audit-checkpoint-{len(old) + 1:012d}-")
    engine = open_database(url, create=False)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT seq, hash FROM audit WHERE key_id IS NULL ORDER BY seq").all() == old
    engine.dispose()
    check = run_wnb(tmp_path, "audit", "verify", "--checkpoints", str(worm), env=env)
    assert check.returncode == 0, check.stderr
    assert f"the first {len(old)} written before audit keys, checked by their hashes alone" in check.stdout
    assert "1 checkpoint matched" in check.stdout


def test_without_the_key_a_keyed_log_is_not_written_to(db_url: str, ruleset: Ruleset, clock: FixedClock) -> None:
    ingest(db_url, ruleset, clock, AuditKeys.of(parse_audit_keys(OLD)), "feed-1-pas-2026-03.ndjson")
    engine = open_database(db_url, audit_keys=AuditKeys())
    with (
        pytest.raises(WnbError, match="authenticated with audit key 'k1': set WNB_AUDIT_KEY"),
        writing(engine) as connection,
    ):
        log = audit.AuditLog(connection)
        log.append(datetime(2026, 3, 20, tzinfo=UTC), "engine", "evaluation", ["E1"], {})
        log.finish()
    engine.dispose()
    assert set(key_ids(db_url)) == {"k1"}


@pytest.mark.parametrize(
    "command_line",
    [["audit", "verify"], ["ingest", str(FIXTURES / "feed-1-pas-2026-03.ndjson")], ["sweep"], ["db", "upgrade"]],
    ids=["verify", "ingest", "sweep", "upgrade"],
)
def test_production_refuses_to_write_or_verify_the_log_without_the_key(tmp_path: Path, command_line: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'wnb.db'}"
    env = {**RULES, "WNB_DATABASE_URL": url, "WNB_MODE": "production", "WNB_AUDIT_KEY": None}
    result = run_wnb(tmp_path, *command_line, env=env)

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("wnb: error: refusing to open the database in production mode: ")
    assert "WNB_AUDIT_KEY is not set" in line and "WNB_SECRETS_DIR" in line
    assert not (tmp_path / "wnb.db").exists()  # refused before anything was created


def test_in_production_the_writer_and_the_verifier_refuse_without_the_key_too(db_url: str) -> None:
    engine = open_database(db_url, audit_keys=AuditKeys(required=True))
    with (
        pytest.raises(WnbError, match="refusing to verify the audit log: WNB_AUDIT_KEY is not set"),
        engine.connect() as connection,
    ):
        audit.verify(connection)
    with (
        pytest.raises(WnbError, match="refusing to write the audit log: WNB_AUDIT_KEY is not set"),
        writing(engine) as connection,
    ):
        log = audit.AuditLog(connection)
        log.append(datetime(2026, 3, 20, tzinfo=UTC), "engine", "evaluation", ["E1"], {})
        log.finish()
    engine.dispose()


def test_serve_refuses_production_without_the_audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WNB_AUDIT_KEY")
    strong = "s" * 40
    settings = Settings(mode="production", session_secret=strong, webhook_secret=strong)
    (problem,) = settings.production_problems()
    assert problem.startswith("WNB_AUDIT_KEY is not set")


def test_the_audit_key_may_come_from_a_file_in_the_secrets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WNB_AUDIT_KEY")
    (tmp_path / "WNB_AUDIT_KEY").write_text(f"{NEW},{OLD}\n")
    monkeypatch.setenv("WNB_SECRETS_DIR", str(tmp_path))
    assert list(load_settings().audit_keys()) == ["k2", "k1"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("k1" + "1" * 40, "WNB_AUDIT_KEY: entry 1 is not ID:SECRET"),
        ("k1:short", "WNB_AUDIT_KEY: the secret of key 'k1' is shorter than 32 characters"),
        (f"{OLD},{OLD}", "WNB_AUDIT_KEY: key 'k1' is given twice"),
        ("bad id:" + "1" * 40, "WNB_AUDIT_KEY: entry 1 is not ID:SECRET"),
    ],
)
def test_a_bad_audit_key_is_named_without_repeating_its_secret(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("WNB_AUDIT_KEY", value)
    with pytest.raises(WnbError) as raised:
        load_settings()
    assert str(raised.value).startswith(message)
    assert "1" * 40 not in str(raised.value) and "short" not in str(raised.value).replace("shorter", "")


def test_new_key_prints_an_entry_the_setting_accepts(tmp_path: Path) -> None:
    result = run_wnb(tmp_path, "audit", "new-key", "--id", "trust-2026", env=RULES)

    assert result.returncode == 0, result.stderr
    assert list(parse_audit_keys(result.stdout.strip())) == ["trust-2026"]
    assert run_wnb(tmp_path, "audit", "new-key", "--id", "no spaces", env=RULES).returncode == 1
