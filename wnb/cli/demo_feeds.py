"""The demo's sample feeds moved by whole weeks, so that they end in the week the demo runs.

Every value of a sample file that reads as a date or a date-time moves by the same number of weeks, on
London's clocks: weekdays and the time of day stay (an outcome recorded at 16:59 on a Friday is still
recorded then), so working-day due times fall as they did. Bank holidays may fall differently. The files
in fixtures/ are never changed: `copy_moved` writes the moved copies elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

from wnb.core.calendar import LONDON, london_date
from wnb.ingest import detect_format

# (pattern, form): a form is "iso", or the strptime format of the date the match is.
Form = tuple[re.Pattern[str], str]
# ISO-8601 dates and date-times (NDJSON, CSV, FHIR JSON, context), and the UK dates people type in a CSV.
TEXT_FORMS: tuple[Form, ...] = (
    (re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "iso"),
    (re.compile(r"(?<![\d/])\d{2}/\d{2}/\d{4}(?![\d/])"), "%d/%m/%Y"),
)
# HL7 v2: the date of a whole component that is a DTM, YYYYMMDD[HHMM[SS]][+HHMM] in UK local time; never
# ten digits, which is how an NHS number looks.
HL7_FORMS: tuple[Form, ...] = (
    (re.compile(r"(?<=[|^~&])\d{8}(?=(?:\d{4}(?:\d{2})?)?(?:\.\d+)?(?:[+-]\d{4})?(?:[|^~&\r\n]|$))"), "%Y%m%d"),
)


def forms_of(path: Path) -> tuple[Form, ...]:
    return HL7_FORMS if detect_format(path) == "hl7" else TEXT_FORMS


def _day(text: str, form: str) -> date:
    """The London calendar date a value names (ValueError when it names none)."""
    if form != "iso":
        return datetime.strptime(text, form).date()
    moment = datetime.fromisoformat(text)
    return london_date(moment) if moment.tzinfo else moment.date()


def _moved(text: str, form: str, weeks: int) -> str:
    """`text` `weeks` later on London's clocks, in its own form; `text` itself when it names no date."""
    later = timedelta(weeks=weeks)
    try:
        if form != "iso":
            return (datetime.strptime(text, form) + later).strftime(form)
        if len(text) == len("2026-03-02"):
            return (date.fromisoformat(text) + later).isoformat()
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # digits that name no date, e.g. 2026-13-45
    if moment.tzinfo is None:
        return (moment + later).isoformat()
    # On London's clocks, then in the value's own offset: across a clock change its UTC time moves an hour.
    wall_clock = moment.astimezone(LONDON).replace(tzinfo=None) + later
    return wall_clock.replace(tzinfo=LONDON).astimezone(moment.tzinfo).isoformat()


def days_in(text: str, forms: tuple[Form, ...]) -> Iterator[date]:
    """The London date of every date or date-time value in `text`."""
    for pattern, form in forms:
        for match in pattern.finditer(text):
            try:
                yield _day(match[0], form)
            except ValueError:
                continue


def move_dates(text: str, forms: tuple[Form, ...], weeks: int) -> str:
    """`text` with every date or date-time value `weeks` later; everything else as it was."""
    for pattern, form in forms:
        text = pattern.sub(partial(_moved_match, form=form, weeks=weeks), text)
    return text


def _moved_match(match: re.Match[str], form: str, weeks: int) -> str:
    return _moved(match[0], form, weeks)


def weeks_to(today: date, days: Iterable[date]) -> int:
    """The whole weeks that move the latest of `days` into the week (Monday to Sunday) of `today`."""
    last = max(days)
    return ((today - timedelta(days=today.weekday())) - (last - timedelta(days=last.weekday()))).days // 7


def copy_moved(folder: Path, target: Path, today: date) -> int:
    """Copy each file of `folder` into `target` with its dates moved so the latest falls in the week of
    `today`; returns the number of weeks moved."""
    files = {path: path.read_bytes().decode("utf-8") for path in sorted(folder.iterdir()) if path.is_file()}
    weeks = weeks_to(today, (day for path, text in files.items() for day in days_in(text, forms_of(path))))
    for path, text in files.items():
        (target / path.name).write_bytes(move_dates(text, forms_of(path), weeks).encode("utf-8"))
    return weeks
