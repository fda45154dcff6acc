"""The ACKs' bytes on the wire, pinned: a change of library or of wnb's own HL7 writing must not change them.

wnb writes its ACKs itself (wnb/ingest/mllp.py build_ack). python-hl7's ACK builder needs a parsed message and
writes MSH-7 without an offset, and its `escape` needs a parsed message's separators and writes a control
character below 0x10 as `\\X 1\\` (a space where a hex digit belongs): ACKs to unreadable messages and the ERR
text would change or break.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import hl7
import pytest

from tests.ingest.test_hl7 import siu
from wnb.core.errors import InvalidEvent
from wnb.ingest.mllp import build_ack

AT = datetime(2026, 3, 2, 12, 6, 7, tzinfo=UTC)
HEADER = hl7.parse(siu().replace("\n", "\r").split("\r", 1)[0])


def wire(ack: bytes) -> bytes:
    """The ACK with its control id (a process-wide counter) masked."""
    return re.sub(rb"\|WNB20260302120607\d{6}\|", b"|WNB20260302120607NNNNNN|", ack)


@pytest.mark.parametrize(
    ("message", "code", "problem", "expected"),
    [
        (
            HEADER,
            "AA",
            None,
            b"MSH|^~\\&|WNB|RXX|PAS|RXX-PAS|20260302120607+0000||ACK^S26^ACK|WNB20260302120607NNNNNN|P|2.5\r"
            b"MSA|AA|MSG1\r",
        ),
        (
            HEADER,
            "AE",
            InvalidEvent("PID-7", "date of birth 2019|02^31 & more~ is not a date \\ here"),
            b"MSH|^~\\&|WNB|RXX|PAS|RXX-PAS|20260302120607+0000||ACK^S26^ACK|WNB20260302120607NNNNNN|P|2.5\r"
            b"MSA|AE|MSG1|date of birth 2019\\F\\02\\S\\31 \\T\\ more\\R\\ is not a date \\E\\ here\r"
            b"ERR||PID^1^7|102^Data type error^HL70357|E||||PID-7: date of birth 2019\\F\\02\\S\\31 \\T\\ more\\R\\ "
            b"is not a date \\E\\ here\r",
        ),
        (
            None,
            "AR",
            InvalidEvent("MSH", "the message has no MSH segment"),
            b"MSH|^~\\&|WNB||||20260302120607+0000||ACK|WNB20260302120607NNNNNN|P|2.5\r"
            b"MSA|AR||the message has no MSH segment\r"
            b"ERR||MSH^1^|101^Required field missing^HL70357|E||||MSH: the message has no MSH segment\r",
        ),
    ],
    ids=["accepted", "invalid-field-escaped", "unreadable"],
)
def test_ack_bytes_stay_the_same(
    message: hl7.Message | None, code: str, problem: InvalidEvent | None, expected: bytes
) -> None:
    assert wire(build_ack(message, code, AT, problem)) == expected
