"""The inbox folder: settled files are ingested once and moved; unreadable ones are quarantined with a report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.factories import run_wnb
from tests.service.test_scheduler import running, wait_for
from wnb.ingest.inbox import poll
from wnb.service import Service
from wnb.store import listing

EVENT = {
    "source": "pas",
    "event_id": "i1",
    "nhs_number": "9990000018",
    "date_of_birth": "2019-05-01",
    "service": "audiology",
    "appointment_id": "a1",
    "appointment_at": "2026-03-02T10:00:00+00:00",
    "attendance": "did-not-attend",
    "recorded_at": "2026-03-02T11:00:00+00:00",
}


def drop(folder: Path, name: str, content: str | bytes, age_seconds: float = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    settled = time.time() - age_seconds
    os.utime(path, (settled, settled))
    return path


def events_stored(service: Service) -> int:
    with service.db.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM event").scalar_one())


def test_a_settled_feed_is_ingested_and_moved_to_processed(tmp_path: Path, service: Service) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "pas.ndjson", json.dumps(EVENT) + "\n")
    (polled,) = poll(service, inbox)
    assert (polled.outcome, polled.counts) == ("processed", {"accepted": 1})
    assert [p.name.endswith("-pas.ndjson") for p in (inbox / "processed").iterdir()] == [True]
    assert not (inbox / "pas.ndjson").exists() and events_stored(service) == 1


def test_a_file_still_being_written_is_left_alone(tmp_path: Path, service: Service) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "pas.ndjson.part", json.dumps(EVENT))
    drop(inbox, "fresh.ndjson", json.dumps(EVENT), age_seconds=0)
    assert poll(service, inbox, settle_seconds=30) == []
    assert (inbox / "pas.ndjson.part").exists() and (inbox / "fresh.ndjson").exists()
    assert events_stored(service) == 0


def test_an_unreadable_file_is_quarantined_with_an_error_report(tmp_path: Path, service: Service) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "scan.pdf", b"%PDF-1.4\0\0binary")
    (polled,) = poll(service, inbox)
    assert polled.outcome == "quarantined" and "not a text file" in (polled.reason or "")
    names = sorted(p.name for p in (inbox / "quarantine").iterdir())
    assert len(names) == 2 and names[1].endswith("scan.pdf.error.txt")
    assert "not a text file" in (inbox / "quarantine" / names[1]).read_text()


def test_a_file_left_in_processing_by_a_crash_is_ingested_once(tmp_path: Path, service: Service) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox / "processing", "pas.ndjson", json.dumps(EVENT) + "\n")
    poll(service, inbox)
    drop(inbox, "again.ndjson", json.dumps(EVENT) + "\n")  # the same file sent again by the clinic
    (again,) = poll(service, inbox)
    assert again.counts == {"duplicate": 1} and events_stored(service) == 1


def test_the_command_line_polls_once_and_says_what_became_of_each_file(tmp_path: Path, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "pas.ndjson", json.dumps(EVENT) + "\n")
    drop(inbox, "scan.pdf", b"\0\0")
    env = {"WNB_DATABASE_URL": db_url, "WNB_RULES_DIR": str(Path(__file__).resolve().parents[2] / "rules/default")}
    done = run_wnb(tmp_path, "inbox", str(inbox), env=env)
    assert done.returncode == 0, done.stderr
    assert "pas.ndjson: processed (1 accepted)" in done.stdout and "scan.pdf: quarantined" in done.stdout


def test_wnb_serve_polls_its_inbox(tmp_path: Path, service: Service) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "pas.ndjson", json.dumps(EVENT) + "\n")
    with running(service, sweep_minutes=60, inbox=inbox):
        wait_for(lambda: events_stored(service) == 1)
    with service.db.connect() as connection:
        assert listing.tasks(connection)
