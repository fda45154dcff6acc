"""NDJSON: one canonical event (or context record) per line; blank lines are skipped.

A line that is not UTF-8, not JSON, too deep or holding too long an integer (wnb.core.limits) is that line's
reject, kept byte for byte; the lines after it are read as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from wnb.core import limits
from wnb.core.errors import InvalidEvent
from wnb.core.items import RawItem

_BOM = b"\xef\xbb\xbf"


def parse_line(line_number: int, text: str) -> RawItem:
    try:
        data = limits.loads(text)
    except InvalidEvent as problem:
        return RawItem(line_number, text, problem)
    if not isinstance(data, dict):
        return RawItem(line_number, text, InvalidEvent("line", "each line must be one JSON object"))
    return RawItem(line_number, text, data)


def read(path: Path) -> Iterator[RawItem]:
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line_number == 1:
                line = line.removeprefix(_BOM)
            text, problem = limits.decode(line.rstrip(b"\r\n"))
            if not text.strip():
                continue
            if problem is not None:
                yield RawItem(line_number, text, InvalidEvent("line", problem.reason))
            else:
                yield parse_line(line_number, text)
