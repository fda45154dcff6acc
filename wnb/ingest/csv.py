"""CSV with a header row naming canonical event fields; empty cells are absent values.

A row the csv module cannot read (a field longer than its limit, wnb.core.limits.CSV_FIELD_LIMIT) or that is
not UTF-8 is that row's reject, kept byte for byte from the lines it spans; the rows after it are read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from wnb.core import limits
from wnb.core.errors import InvalidEvent
from wnb.core.items import RawItem


def _text(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


class _Lines(Iterator[str]):
    """The file's lines for csv.reader, remembering those of the row being read (its raw text for a reject)."""

    def __init__(self, handle: io.TextIOBase) -> None:
        self._handle = handle
        self.taken: list[str] = []

    def __next__(self) -> str:
        line = next(self._handle)
        self.taken.append(line)
        return line

    def row_text(self) -> str:
        text, self.taken = "".join(self.taken).rstrip("\r\n"), []
        return text


def read(path: Path) -> Iterator[RawItem]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return
        lines.row_text()
        header = [name.strip() for name in header]
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the row is refused; the reader starts afresh at the next line
                reason = f"not a readable CSV row ({error})"
                if "field larger than field limit" in str(error):
                    reason = f"a field is longer than {limits.CSV_FIELD_LIMIT} characters"
                yield RawItem(reader.line_num, lines.row_text(), InvalidEvent("row", reason))
                continue
            line = reader.line_num
            raw = lines.row_text()
            if not any(value.strip() for value in values):
                continue
            problem = limits.text_problem(raw)
            if problem is not None and "U+0000" not in problem:
                yield RawItem(line, raw, InvalidEvent("row", f"not UTF-8 text: {problem}"))
                continue
            text = _text(values)
            if len(values) != len(header):
                problem_event = InvalidEvent(
                    "row", f"has {len(values)} values but the header has {len(header)} columns"
                )
                yield RawItem(line, text, problem_event)
                continue
            data = {name: value for name, value in zip(header, values, strict=True) if value.strip() != ""}
            yield RawItem(line, text, data)
