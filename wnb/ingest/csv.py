"""CSV with a header row naming canonical event fields; empty cells are absent values."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from wnb.errors import InvalidEvent
from wnb.service import RawItem


def _text(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def read(path: Path) -> Iterator[RawItem]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            text = _text(values)
            if len(values) != len(header):
                problem = InvalidEvent("row", f"has {len(values)} values but the header has {len(header)} columns")
                yield RawItem(line, text, problem)
                continue
            data = {name: value for name, value in zip(header, values, strict=True) if value.strip() != ""}
            yield RawItem(line, text, data)
