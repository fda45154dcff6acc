"""HL7 v2 SIU scheduling messages mapped to canonical events (DOMAIN.md §2.1), parsed with python-hl7.

The mapping:
- `source`: MSH-4 sending facility (its first component); `event_id`: MSH-10 message control id;
- `nhs_number`: the PID-3 identifier whose assigning authority (CX-4) is `NHS` or the NHS number's OID
  `2.16.840.1.113883.2.1.4.1` (as a namespace id or a universal id, CX-4.1 or CX-4.2); `date_of_birth`: PID-7;
- `appointment_id`: SCH-2 filler appointment id, else SCH-1 placer appointment id (first component);
- `service`: AIS-3 universal service identifier, else AIL-3 location (first component);
- `appointment_at`: TQ1-7 start, else SCH-11 timing quantity start (TQ-4), else AIS-4; a time without an
  offset is UK local time;
- `recorded_at`: EVN-2 when there is one, else MSH-7;
- `attendance` from the trigger event (MSH-9.2): S26 → did-not-attend; S12 → booked; S13 and S14 → booked
  when SCH-25 says Booked, Pending, Waitlist, Overbook or Blocked (without a filler status they are in error:
  a modification sent after a no-show must never withdraw what the no-show raised);
  S15 → cancelled-by-patient when the SCH-6 reason code or text starts with `pat`, else cancelled-by-provider;
  S17 (deletion) → entered-in-error. A filler status (SCH-25) of Noshow → did-not-attend, Complete or Started
  → attended, Cancelled → as S15, Deleted → entered-in-error overrides the trigger.
A message that cannot be parsed, or is not SIU, or has a trigger wnb does not use is refused (HL7 `AR`);
one whose content is invalid (no NHS number, bad date, …) is in error (`AE`). Either way it is kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import hl7
import hl7.containers
import hl7.util
from hl7.datatypes import parse_datetime

from wnb.core import limits
from wnb.core.calendar import LONDON
from wnb.core.domain import AttendanceEvent
from wnb.core.errors import InvalidEvent
from wnb.core.items import RawItem

START_BLOCK, END_BLOCK = "\x0b", "\x1c"
# python-hl7 logs the text of fields it cannot unescape (NHS numbers, names); wnb's logs carry ids only.
# A filter, not `disabled`: logging.config.dictConfig (uvicorn's, for one) re-enables disabled loggers.
for _module in (hl7.containers, hl7.util):
    logging.getLogger(_module.__file__).addFilter(lambda _record: False)
_TRIGGERS = {
    "S12": "booked",
    "S13": "booked",
    "S14": "booked",
    "S15": "cancelled",
    "S17": "entered-in-error",
    "S26": "did-not-attend",
}
_FILLER_STATUS = {
    "noshow": "did-not-attend",
    "complete": "attended",
    "started": "attended",
    "cancelled": "cancelled",
    "deleted": "entered-in-error",
}
# The OID of NHS numbers (England and Wales), sent by some feeds as PID-3's assigning authority instead of NHS.
NHS_NUMBER_OID = "2.16.840.1.113883.2.1.4.1"
_STILL_BOOKED = frozenset({"booked", "pending", "waitlist", "overbook", "blocked"})
# Where a canonical field comes from, so a reject names the HL7 field the sender must fix.
HL7_FIELD = {
    "source": "MSH-4",
    "event_id": "MSH-10",
    "nhs_number": "PID-3",
    "date_of_birth": "PID-7",
    "appointment_id": "SCH-2",
    "service": "AIS-3",
    "appointment_at": "SCH-11",
    "recorded_at": "MSH-7",
    "attendance": "SCH-25",
}


class MessageProblem(InvalidEvent):
    """Why a message could not be used, naming the HL7 field, and which message it was (for the reject)."""

    identity: dict[str, str | None] = {}  # replaced per instance, never mutated


class Refused(MessageProblem):
    """A message wnb cannot take at all (unparseable, not SIU, an unused trigger): acknowledged `AR`."""


def _get(message: hl7.Message, segment: str, field: int, component: int = 1, repeat: int = 1) -> str:
    """One value, or "" when the segment, field, repetition or component is absent."""
    try:
        value = message.extract_field(segment, 1, field, repeat, component)
    except (KeyError, IndexError):
        return ""
    return str(value).strip()


def _has(message: hl7.Message, segment: str) -> bool:
    try:
        message.segments(segment)
    except KeyError:
        return False
    return True


def _instant(text: str, where: str) -> str:
    """An HL7 DTM as ISO-8601 with an offset; without one it is UK local time."""
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None or len(text.split("+")[0].split("-")[0]) < 8:
        raise InvalidEvent(where, f"{text!r} is not an HL7 date-time (YYYYMMDD[HHMM[SS]][+HHMM])")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return str(moment.isoformat())


def _birth_date(text: str) -> str:
    if not re.fullmatch(r"\d{8}(\d{2,6})?([+-]\d{4})?", text):
        raise InvalidEvent("PID-7", f"{text!r} is not an HL7 date of birth (YYYYMMDD)")
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        raise InvalidEvent("PID-7", f"{text!r} is not a real date") from None


def _is_nhs_authority(message: hl7.Message, repeat: int) -> bool:
    """Whether PID-3's repetition names the NHS as assigning authority: `NHS`, or the NHS number's OID
    in CX-4.1 (namespace id) or CX-4.2 (universal id, `^…^ISO`)."""
    authority = _get(message, "PID", 3, 4, repeat)
    if authority.upper() == "NHS" or authority == NHS_NUMBER_OID:
        return True
    try:  # CX-4 is a hierarchic designator: its sub-components sit below the component
        universal = message.extract_field("PID", 1, 3, repeat, 4, 2)
    except (KeyError, IndexError):
        return False
    return str(universal).strip() == NHS_NUMBER_OID


def _nhs_number(message: hl7.Message) -> str:
    if not _has(message, "PID"):
        raise InvalidEvent("PID", "the message has no PID segment")
    for repeat in range(1, 21):
        if _is_nhs_authority(message, repeat):
            value = _get(message, "PID", 3, 1, repeat)
            if not value:
                raise InvalidEvent("PID-3", "the NHS identifier (assigning authority NHS) has no number")
            return str(value)
        if repeat > 1 and not _get(message, "PID", 3, 1, repeat):
            break
    raise InvalidEvent("PID-3", f"no patient identifier with assigning authority NHS (or {NHS_NUMBER_OID})")


def _appointment_at(message: hl7.Message) -> str:
    for where, text in (
        ("TQ1-7", _get(message, "TQ1", 7)),
        ("SCH-11", _get(message, "SCH", 11, 4)),
        ("AIS-4", _get(message, "AIS", 4)),
    ):
        if text:
            return _instant(text, where)
    raise InvalidEvent("SCH-11", "no appointment start time in TQ1-7, SCH-11 (component 4) or AIS-4")


def _attendance(message: hl7.Message, trigger: str) -> str:
    meaning = _TRIGGERS[trigger]
    status = _get(message, "SCH", 25).lower()
    if status in _FILLER_STATUS:
        meaning = _FILLER_STATUS[status]
    elif trigger in ("S13", "S14") and status not in _STILL_BOOKED:
        # Read as "booked", a modification sent after a no-show would withdraw the safeguarding tasks it raised.
        raise InvalidEvent(
            "SCH-25",
            f"SIU^{trigger} needs a filler status (Booked, Noshow, Complete, Cancelled, ...) so that a "
            "modification never silently changes an appointment's outcome",
        )
    if meaning != "cancelled":
        return meaning
    reason = (_get(message, "SCH", 6) or _get(message, "SCH", 6, 2)).lower()
    return "cancelled-by-patient" if reason.startswith("pat") else "cancelled-by-provider"


def message_to_event(message: hl7.Message) -> dict[str, Any]:
    """The canonical event of one SIU message; Refused or InvalidEvent naming the HL7 field otherwise."""
    kind, trigger = _get(message, "MSH", 9, 1).upper(), _get(message, "MSH", 9, 2).upper()
    if kind != "SIU":
        raise Refused("MSH-9", f"message type {kind or '(none)'} is not SIU; wnb takes SIU scheduling messages")
    if trigger not in _TRIGGERS:
        raise Refused("MSH-9", f"trigger event SIU^{trigger or '(none)'} is not one wnb uses ({', '.join(_TRIGGERS)})")
    source = _get(message, "MSH", 4)
    if not source:
        raise InvalidEvent("MSH-4", "the sending facility is required: it names the source of the appointments")
    control_id = _get(message, "MSH", 10)
    if not control_id:
        raise InvalidEvent("MSH-10", "the message control id is required: it makes each message idempotent")
    if not _has(message, "SCH"):
        raise InvalidEvent("SCH", "the message has no SCH segment")
    appointment_id = _get(message, "SCH", 2) or _get(message, "SCH", 1)
    if not appointment_id:
        raise InvalidEvent("SCH-2", "no appointment id in SCH-2 (filler) or SCH-1 (placer)")
    service = _get(message, "AIS", 3) or _get(message, "AIL", 3)
    if not service:
        raise InvalidEvent("AIS-3", "no service in AIS-3 (universal service identifier) or AIL-3 (location)")
    event: dict[str, Any] = {
        "source": source,
        "event_id": control_id,
        "nhs_number": _nhs_number(message),
        "service": service,
        "appointment_id": appointment_id,
        "appointment_at": _appointment_at(message),
        "attendance": _attendance(message, trigger),
    }
    if born := _get(message, "PID", 7):
        event["date_of_birth"] = _birth_date(born)
    recorded = ("EVN-2", _get(message, "EVN", 2)) if _get(message, "EVN", 2) else ("MSH-7", _get(message, "MSH", 7))
    if recorded[1]:
        event["recorded_at"] = _instant(recorded[1], recorded[0])
    return event


def normalise(text: str) -> str:
    """One message's text with segments ended by carriage returns and no MLLP framing characters."""
    text = text.replace(START_BLOCK, "").replace(END_BLOCK, "")
    lines = [line.strip() for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")]
    return "\r".join(line for line in lines if line) + "\r"


def parse_message(text: str) -> hl7.Message:
    """Parse one message with python-hl7; Refused when it is not an HL7 v2 message at all."""
    clean = normalise(text)
    if not clean.startswith("MSH") or len(clean) < 8:
        raise Refused("MSH", "the message does not start with an MSH segment")
    try:
        return hl7.parse(clean)
    except Exception as error:  # python-hl7 raises ParseException, IndexError, … on malformed text
        raise Refused("MSH", f"not a parseable HL7 v2 message ({type(error).__name__}: {error})") from None


def item_of(line: int | None, text: str, message: hl7.Message) -> RawItem:
    """A parsed message as a RawItem: its canonical event, or why it could not be mapped."""
    try:
        try:
            event = message_to_event(message)
        except InvalidEvent:
            raise
        except Exception as error:
            # A message shaped in a way python-hl7 or this mapping did not foresee: kept, never a crash.
            raise Refused("MSH", f"the message could not be read ({type(error).__name__})") from None
        if problem := limits.value_problem(event):
            raise problem
        if "\x00" in text:  # in a segment wnb does not read: refused all the same
            raise InvalidEvent("MSH", "the message contains U+0000 (NUL), which wnb does not accept anywhere")
        try:
            AttendanceEvent.parse(event)  # checked here too, so that a problem names the HL7 field to fix
        except InvalidEvent:
            raise
        except Exception as error:
            raise InvalidEvent("MSH", limits.unexpected(error, "the message")) from None
    except InvalidEvent as error:
        problem = error if isinstance(error, MessageProblem) else MessageProblem(error.field, error.reason)
        if not isinstance(problem, Refused) and problem.field in HL7_FIELD:
            problem = MessageProblem(f"{HL7_FIELD[problem.field]} ({problem.field})", problem.reason)
        # The data-quality queue shows which message it was: sending facility and control id.
        problem.identity = {"source": _get(message, "MSH", 4) or None, "event_id": _get(message, "MSH", 10) or None}
        return RawItem(line, text, problem)
    return RawItem(line, text, event)


def to_item(line: int | None, text: str) -> RawItem:
    """One message's text as a RawItem: its canonical event, or why it could not be parsed or mapped."""
    try:
        message = parse_message(text)
    except Refused as problem:
        return RawItem(line, text, problem)
    return item_of(line, text, message)


def split_messages(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each message of a file: a message starts at each MSH segment.

    The text has one segment a line (readable in `wnb rejects`, and what `mllp_send --loose` sends).

    Batch and file envelopes (FHS, BHS, BTS, FTS) are dropped; text before the first MSH is kept as its own
    item so that it is rejected, never silently lost.
    """
    start, current = 0, list[str]()
    for number, raw in enumerate(lines, start=1):
        for part in raw.replace(START_BLOCK, "").replace(END_BLOCK, "\r").split("\r"):
            segment = part.strip()
            if not segment or segment[:3] in ("FHS", "BHS", "BTS", "FTS"):
                continue
            if segment.startswith("MSH") and current:
                yield start, "\n".join(current) + "\n"
                current = []
            if not current:
                start = number
            current.append(segment)
    if current:
        yield start, "\n".join(current) + "\n"


def read(path: Path) -> Iterator[RawItem]:
    """A file of HL7 v2 messages (segments one per line, or MLLP-framed), one item per message.

    A message that is not UTF-8 is read as Windows-1252 (older PAS feeds send it, as over MLLP); one that is
    neither is rejected, its bytes kept.
    """
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        for line, text in split_messages(iter(handle)):
            if limits.text_problem(text) is None:
                yield to_item(line, text)
                continue
            decoded, problem = decode_message(text.encode("utf-8", "surrogateescape"))
            yield RawItem(line, text, Refused("MSH", problem)) if problem else to_item(line, decoded)


def decode_message(data: bytes) -> tuple[str, str | None]:
    """A message's bytes as text: UTF-8, else Windows-1252; else the text (bytes kept as surrogate escapes) and
    why it cannot be read."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), None
    except UnicodeDecodeError as error:
        return data.decode("utf-8", "surrogateescape"), f"neither UTF-8 nor Windows-1252 text (byte {error.start})"


def looks_like_hl7(head: str) -> bool:
    """Whether the start of a file is HL7 v2 (an MSH, batch or file header, maybe MLLP-framed)."""
    return head.lstrip("\ufeff\x0b \r\n").startswith(("MSH|", "FHS|", "BHS|"))
