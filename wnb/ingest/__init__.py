"""Input formats: each module turns a file into RawItems (line, text, fields or the reason they failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from wnb.core.errors import WnbError
from wnb.core.items import RawItem
from wnb.fhir import appointments
from wnb.ingest import csv as csv_format
from wnb.ingest import hl7, ndjson

READERS = {"ndjson": ndjson.read, "csv": csv_format.read, "fhir": appointments.read, "hl7": hl7.read}


def detect_format(path: Path) -> str:
    """By extension, else by content: HL7 v2 messages, a FHIR resource, NDJSON lines, or CSV."""
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    if suffix == ".hl7":
        return "hl7"
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(4096)
    if hl7.looks_like_hl7(head):
        return "hl7"
    if '"resourceType"' in head and (suffix == ".json" or not head.lstrip().startswith('{"source"')):
        return "fhir"
    return "ndjson" if head.lstrip().startswith("{") else "csv"


def file_format(path: Path, format: str | None = None) -> str:
    """The reader to use for a file: `format` if given, else by extension or content; refuses what it cannot read."""
    if not path.is_file():
        raise WnbError(f"{path}: no such file")
    name = format or detect_format(path)
    if name not in READERS:
        raise WnbError(f"{path}: unknown format {name!r}; use one of {', '.join(READERS)}")
    return name


def read_file(path: Path, format: str | None = None) -> Iterator[RawItem]:
    """Stream the items of a file, one at a time (memory does not grow with the file)."""
    return READERS[file_format(path, format)](path)
