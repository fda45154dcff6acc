"""The inbox: nightly extracts dropped in a folder are ingested, then moved to `processed/`; a file that
cannot be read at all goes to `quarantine/` with an error report beside it and opens an admin task.

A file is taken only once it has settled (unchanged for `settle_seconds`) and is claimed by renaming it
into `processing/`, so a file still being written is never read, and two pollers never read one file.
Files whose names start with `.` or end in `.part` or `.tmp` are being written and are left alone. A file
left in `processing/` by a crash is ingested again at the next poll: ingestion is idempotent. Replicas sharing
the folder on PostgreSQL read a file in `processing/` only while holding its advisory lock, so a file being
ingested by one replica is left alone by the others, and one left by a crashed replica is taken by the next.

The inbox never stalls. A bad row is that row's reject (wnb.core.limits); a file that fails as a whole, for any
reason but the database being away, is quarantined (one admin task `inbox-file-quarantined` each, listed
under `warnings` by /health/ready until done) and the files behind it are read. A file of a type wnb does
not read (by its extension: not NDJSON, CSV, JSON, HL7 or plain text) is quarantined unread. While the
database is away a file stays in `processing/` and the poll stops, to be tried again at the next one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import Connection, Engine

from wnb import metrics
from wnb.core import limits
from wnb.core.errors import WnbError
from wnb.ingest import read_file
from wnb.ingest.ingests import Ingests
from wnb.store import concurrency
from wnb.store.admin_tasks import open_admin_task, open_tasks_about

log = structlog.get_logger("wnb.ingest.inbox")
_WRITING = (".part", ".tmp")
# What the inbox reads (the format is then told by extension or content, wnb.ingest.detect_format).
READABLE_SUFFIXES = frozenset({".ndjson", ".jsonl", ".json", ".csv", ".hl7", ".txt", ".dat", ""})
QUARANTINED_CODE = "inbox-file-quarantined"
# PDF, ZIP (xlsx, docx), OLE (xls, doc), gzip, PNG, JPEG
_BINARY_SIGNATURES = (b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\x1f\x8b", b"\x89PNG", b"\xff\xd8\xff")


@dataclass(frozen=True)
class Polled:
    name: str
    outcome: str  # processed | quarantined
    counts: dict[str, int]
    reason: str | None = None


def _is_ready(path: Path, settle_seconds: float, now: float) -> bool:
    if not path.is_file() or path.name.startswith(".") or path.name.endswith(_WRITING):
        return False
    return now - path.stat().st_mtime >= settle_seconds


def _looks_binary(path: Path) -> bool:
    """A document, archive or image, not a feed: a known signature, or many NUL bytes at the start.

    A NUL or two in a text feed is not enough: that row is rejected (wnb.core.limits) and the rest is read.
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    return head.startswith(_BINARY_SIGNATURES) or head.count(b"\0") > max(2, len(head) // 100)


def _type_problem(path: Path) -> str | None:
    """Why wnb will not read a file, or None: of a type it does not read, or not text."""
    if _looks_binary(path):
        return f"{path.name}: not a text file (a document, archive or image); expected NDJSON, CSV, FHIR JSON or HL7 v2"
    if path.suffix.lower() not in READABLE_SUFFIXES:
        return (
            f"{path.name}: a file of unknown type ({path.suffix}); the inbox reads "
            f"{', '.join(sorted(s for s in READABLE_SUFFIXES if s))} and names without an extension"
        )
    return None


def poll(service: Ingests, folder: Path, settle_seconds: float = 5.0) -> list[Polled]:
    """Ingest every settled file of `folder` (and any left in `processing/`); say what became of each."""
    processing, processed, quarantine = (folder / name for name in ("processing", "processed", "quarantine"))
    for sub in (processing, processed, quarantine):
        sub.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for path in sorted(folder.iterdir()):
        if _is_ready(path, settle_seconds, now):
            try:
                path.rename(processing / path.name)  # the claim: atomic within one file system
            except FileNotFoundError:
                continue  # another poller took it
    polled = []
    for path in sorted(processing.iterdir()):
        # Replicas: a file in processing/ is read by whoever holds its lock (a crashed holder's lock is gone).
        with concurrency.file_lock(service.db, path.name) as mine:
            if mine and path.exists():
                polled.append(_ingest_claimed(service, path, processed, quarantine))
    return polled


def _ingest_claimed(service: Ingests, path: Path, processed: Path, quarantine: Path) -> Polled:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        if problem := _type_problem(path):
            raise WnbError(problem)
        counts = service.ingest(read_file(path), origin=f"inbox:{path.name}", actor="inbox")
    except Exception as error:
        if concurrency.is_connection_loss(error) or isinstance(error, concurrency.DatabaseUnavailable):
            raise  # the file is fine: it stays in processing/ for the next poll
        return _quarantine(service, path, quarantine, stamp, error)
    path.rename(processed / f"{stamp}-{path.name}")
    log.info("inbox_file_processed", file=path.name, **counts)
    return Polled(path.name, "processed", dict(counts))


def _quarantine(service: Ingests, path: Path, quarantine: Path, stamp: str, error: Exception) -> Polled:
    """Move the file aside, open its admin task and write its error report beside it; the poll goes on."""
    foreseen = isinstance(error, WnbError | OSError | UnicodeError)
    # The task and audit carry the class of an error nobody foresaw, never its text (it may quote the file).
    reason = str(error) if foreseen else f"the file could not be read ({type(error).__name__})"
    target = quarantine / f"{stamp}-{path.name}"
    path.rename(target)
    log.warning("inbox_file_quarantined", file=path.name, reason=type(error).__name__)
    name = limits.printable(target.name) or ""
    task = None
    try:
        note = f"inbox file {name} quarantined: {limits.printable(reason)}"
        details = {"file": name, "reason": limits.printable(reason)}
        task = open_admin_task(
            service.db, quarantined_service(target.name), QUARANTINED_CODE, note, details, datetime.now(UTC), "inbox"
        )
    except Exception as task_error:  # the file is aside and reported; the report says to tell an admin
        log.error("inbox_quarantine_task_failed", file=path.name, error=type(task_error).__name__)
    then = f"then complete admin task {task}" if task else "then tell an admin (no admin task could be opened)"
    report = (
        f"{path.name} could not be read and was not ingested.\n"
        f"Reason: {reason if foreseen else f'{type(error).__name__}: {error}'}\n"
        "Fix or replace the file and drop it in the inbox again (rows already ingested are not stored twice); "
        f"{then}.\n"
    )
    target.with_name(target.name + ".error.txt").write_text(report, encoding="utf-8", errors="replace")
    return Polled(path.name, "quarantined", {}, reason)


def quarantined_service(name: str) -> str:
    """The `service` of a quarantined file's admin task: what it is about (one open task per file)."""
    return f"inbox:{limits.printable(name, 94)}"


def record_quarantined(db: Engine) -> list[dict[str, str]]:
    """Set the quarantined-files gauge from the database; the files (name and open task), for /health/ready."""
    with db.connect() as connection:
        files = quarantined_files(connection)
    metrics.INBOX_QUARANTINED.set(len(files))
    return files


def quarantined_files(connection: Connection) -> list[dict[str, str]]:
    """The quarantined files whose admin task is still open: each one's name and task id."""
    tasks = open_tasks_about(connection, QUARANTINED_CODE)
    return [{"file": about.removeprefix("inbox:"), "task": f"T{task_id}"} for task_id, about in tasks]
