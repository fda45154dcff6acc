"""CSV that wnb writes for people to open in a spreadsheet: a cell that would start a formula is kept as text.

Feeds and people choose some of what an export holds (a source's name, a code), and a spreadsheet runs a
cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula (CSV injection: a link that
sends the sheet away, a command). Such a cell is written with a single quote in front, which spreadsheets
show as text and do not run; the value after the quote is unchanged. Every CSV wnb writes goes through here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, with a single quote in front when it begins like a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """The rows as CSV text (the first row is the header), every cell made safe."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue()
