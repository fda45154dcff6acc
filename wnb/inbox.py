"""The inbox: nightly extracts dropped in a folder are ingested, then moved to `processed/`; a file that
cannot be read at all goes to `quarantine/` with an error report beside it.

A file is taken only once it has settled (unchanged for `settle_seconds`) and is claimed by renaming it
into `processing/`, so a file still being written is never read, and two pollers never read one file.
Files whose names start with `.` or end in `.part` or `.tmp` are being written and are left alone. A file
left in `processing/` by a crash is ingested again at the next poll: ingestion is idempotent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from wnb.errors import WnbError
from wnb.ingest import read_file
from wnb.service import Service

log = structlog.get_logger("wnb.inbox")
_WRITING = (".part", ".tmp")


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
    with path.open("rb") as handle:
        return b"\0" in handle.read(4096)


def poll(service: Service, folder: Path, settle_seconds: float = 5.0) -> list[Polled]:
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
    return [_ingest_claimed(service, path, processed, quarantine) for path in sorted(processing.iterdir())]


def _ingest_claimed(service: Service, path: Path, processed: Path, quarantine: Path) -> Polled:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        if _looks_binary(path):
            raise WnbError(f"{path.name}: not a text file (NUL bytes); expected NDJSON, CSV, FHIR JSON or HL7 v2")
        counts = service.ingest(read_file(path), origin=f"inbox:{path.name}", actor="inbox")
    except (WnbError, OSError, UnicodeError) as error:
        target = quarantine / f"{stamp}-{path.name}"
        path.rename(target)
        report = f"{path.name} could not be read and was not ingested.\nReason: {error}\n"
        target.with_name(target.name + ".error.txt").write_text(report, encoding="utf-8")
        log.warning("inbox_file_quarantined", file=path.name, reason=type(error).__name__)
        return Polled(path.name, "quarantined", {}, str(error))
    path.rename(processed / f"{stamp}-{path.name}")
    log.info("inbox_file_processed", file=path.name, **counts)
    return Polled(path.name, "processed", dict(counts))
