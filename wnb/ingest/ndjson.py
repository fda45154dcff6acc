"""NDJSON: one canonical event (or context record) per line; blank lines are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from wnb.errors import InvalidEvent
from wnb.service import RawItem


def parse_line(line_number: int, text: str) -> RawItem:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return RawItem(line_number, text, InvalidEvent("line", f"not valid JSON ({error.msg} at column {error.colno})"))
    if not isinstance(data, dict):
        return RawItem(line_number, text, InvalidEvent("line", "each line must be one JSON object"))
    return RawItem(line_number, text, data)


def read(path: Path) -> Iterator[RawItem]:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield parse_line(line_number, text)
