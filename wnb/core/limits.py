"""What wnb refuses to read, whatever the entry point: the limits of one row, message or resource.

Each limit keeps a value that no clinic system sends legitimately from reaching a place where it would
crash (Python's recursion limit, the integer-to-text limit, a date that overflows on conversion to UTC)
or abort a whole transaction (PostgreSQL refuses U+0000 in text and JSON). A value past one is a reject
naming the limit, never an error that stops a file, a batch or the inbox. Pure: no clock, database or I/O.
"""

from __future__ import annotations

import base64
import csv
import json
from datetime import date, datetime
from typing import Any

from wnb.core.errors import InvalidEvent

MAX_JSON_DEPTH = 20  # a canonical event is flat; a FHIR Appointment nests about 6 levels
MAX_INT_DIGITS = 18  # any integer a feed means fits in 64 bits
FIRST_YEAR, LAST_YEAR = 1900, 2100  # appointments, recorded times and dates of birth
CSV_FIELD_LIMIT = csv.field_size_limit()  # the csv module's own limit (131,072 characters by default)
RAW_TEXT, RAW_BASE64 = "text", "base64"  # how a reject's raw input is kept (reject.raw_encoding)


class LongInteger:
    """An integer of more than MAX_INT_DIGITS digits as read from JSON: kept as its digits, never made an int
    (Python refuses to read one of more than 4,300 digits), so that only the item holding it is rejected."""

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return self.digits


def _int(text: str) -> int | LongInteger:
    return int(text) if len(text) <= MAX_INT_DIGITS + 1 else LongInteger(text)


_DECODER = json.JSONDecoder(parse_int=_int)


def loads(text: str | bytes, field: str = "line") -> Any:
    """Parse JSON text; InvalidEvent(`field`, ...) when it is malformed or nested past Python's recursion limit.

    Text that was not UTF-8 may come with surrogate escapes (errors="surrogateescape"): it parses, and
    `value_problem` then rejects the item holding it. So does it an integer past MAX_INT_DIGITS (a LongInteger).
    """
    try:
        return _DECODER.decode(text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text)
    except json.JSONDecodeError as error:
        raise InvalidEvent(field, f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:
        raise InvalidEvent(field, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # e.g. a number Python refuses to read
        raise InvalidEvent(field, f"not valid JSON ({error})") from None


def dumps(value: Any) -> str:
    """A parsed value as JSON text for a reject's raw text, whatever it holds (else its repr).

    Bytes that were not UTF-8 (surrogate escapes) stay as they are, so the reject keeps the bytes received.
    """
    try:
        text = json.dumps(value, default=_digits)
    except (ValueError, RecursionError, TypeError):
        return repr(value)
    return json.dumps(value, default=_digits, ensure_ascii=False) if "\\udc" in text else text


def _digits(value: Any) -> str:
    if isinstance(value, LongInteger):
        return value.digits
    raise TypeError(f"{type(value).__name__} is not JSON")


def value_problem(value: Any, where: str = "") -> InvalidEvent | None:
    """Why a parsed value (a row's fields, a record, a resource) cannot be taken, or None.

    U+0000 anywhere (key or text), text that is not valid Unicode (a lone surrogate), nesting deeper than
    MAX_JSON_DEPTH, an integer of more than MAX_INT_DIGITS digits.
    """
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return InvalidEvent(path or "value", f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if problem := text_problem(item):
                return InvalidEvent(path or "value", problem)
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and (problem := text_problem(key)):
                    return InvalidEvent(printable(path) or "value", f"a field name: {problem}")
                stack.append((inner, name, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, f"{path}.{index}", depth + 1) for index, inner in enumerate(item))
        elif isinstance(item, LongInteger) or (isinstance(item, int) and abs(item) >= 10**MAX_INT_DIGITS):
            return InvalidEvent(path or "value", f"an integer of more than {MAX_INT_DIGITS} digits")
    return None


def text_problem(text: str) -> str | None:
    """Why a text cannot be stored as it is (PostgreSQL refuses U+0000; a lone surrogate is no character)."""
    if "\x00" in text:
        return "contains U+0000 (NUL), which wnb does not accept in any value"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"not valid Unicode text (character {error.start}: bytes that are not UTF-8, or a lone surrogate)"
    return None


def printable(text: str | None, limit: int | None = None) -> str | None:
    """A text safe to store and show: U+0000 and invalid characters written as escapes (\\x00, \\udcff)."""
    if text is None:
        return None
    if text_problem(text) is not None:
        text = "".join(repr(char)[1:-1] if char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
    return text if limit is None else text[:limit]


def storable_raw(text: str) -> tuple[str, str]:
    """A row's raw text as the reject keeps it: (raw, encoding). Text as it is, or base64 of the bytes received
    when it holds U+0000 or bytes that are not UTF-8 (read with errors="surrogateescape", so they come back whole).
    """
    if text_problem(text) is None:
        return text, RAW_TEXT
    return base64.b64encode(_received_bytes(text)).decode("ascii"), RAW_BASE64


def _received_bytes(text: str) -> bytes:
    """The bytes a text read with errors="surrogateescape" came from; a lone surrogate of another kind (from a
    JSON escape such as \\ud800) as its own three bytes."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b"".join(
            bytes([ord(char) - 0xDC00]) if 0xDC80 <= ord(char) <= 0xDCFF else char.encode("utf-8", "surrogatepass")
            for char in text
        )


def raw_bytes(raw: str, encoding: str) -> bytes:
    """The bytes a reject's raw input stands for."""
    if encoding == RAW_BASE64:
        return base64.b64decode(raw)
    return raw.encode("utf-8")


def decode(data: bytes) -> tuple[str, InvalidEvent | None]:
    """Bytes as text, with bytes that are not UTF-8 kept as surrogate escapes, and the problem they make."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", "surrogateescape")
        return text, InvalidEvent("text", f"not UTF-8 text (byte {error.start})")


def year_problem(value: date | datetime | None) -> str | None:
    """Why a date is refused: outside FIRST_YEAR to LAST_YEAR."""
    if value is None or FIRST_YEAR <= value.year <= LAST_YEAR:
        return None
    return f"{value.isoformat()} is outside the years {FIRST_YEAR} to {LAST_YEAR}"


def unexpected(error: BaseException, what: str = "the row") -> str:
    """The reason given for an error nobody foresaw while reading one item: its kind, never its text."""
    return f"{what} could not be read ({type(error).__name__})"
