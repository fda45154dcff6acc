"""The audit chain's canonical form and hashes (ARCHITECTURE.md §6): pure, so the writer, the verifier and an
external auditor's own script compute the same bytes.

A record's hash is SHA-256 over the canonical JSON of its header (number, time, actor, action, subjects,
ruleset version, previous hash, key id) and then of its payload. The store writes and verifies the chain
(wnb/store/audit.py, wnb/store/audit_verify.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import Enum
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64
REKEYED = "audit_rekeyed"  # the record after which every record carries a MAC


def _plain(value: Any) -> Any:
    """What JSON cannot encode itself: times as ISO-8601, enums as their value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot record a {type(value).__name__} in the audit log")


# json.dumps builds a new encoder on every call made with options; one encoder, made once, does the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


# How the canonical encoder writes a string (ensure_ascii=False): json's own C function.
_string = encode_basestring


def canonical(value: Any) -> str:
    """One JSON text per value: keys sorted, no spaces; the same after a round trip through the store."""
    return _CANONICAL.encode(value)


def stored_list(items: list[str]) -> str:
    """The JSON text json.dumps gives a list of strings, as the store writes a JSON column; ids need no escapes."""
    joined = "".join(items)
    if all(items) and joined.isascii() and joined.isalnum():  # every item a non-empty run of ASCII letters/digits
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return json.dumps(items)


def header_text(
    seq: Any, at: str, actor: Any, action: Any, subject: Any, version: Any, prev_hash: Any, key_id: Any = None
) -> str:
    """canonical() of a record's header; written out directly (twice as fast) when its values have the types
    append() gives them, each string encoded by the very function the canonical encoder uses.

    A record written with an audit key has its key's id in the header (so stripping the key changes the hash);
    one written before wnb had audit keys has no such field, and its hash is what it always was.
    """
    if (
        type(seq) is int
        and (key_id is None or type(key_id) is str)
        and type(actor) is str
        and type(action) is str
        and type(prev_hash) is str
        and (version is None or type(version) is str)
        and type(subject) is list
        and all(type(item) is str for item in subject)
    ):
        key = "" if key_id is None else f'"key_id":{_string(key_id)},'
        return (
            f'{{"action":{_string(action)},"actor":{_string(actor)},"at":{_string(at)},{key}'
            f'"prev_hash":{_string(prev_hash)},"ruleset_version":{"null" if version is None else _string(version)},'
            f'"seq":{int.__repr__(seq)},"subject":[{",".join(map(_string, subject))}]}}'
        )
    header = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "ruleset_version": version,
        "prev_hash": prev_hash,
    }
    if key_id is not None:
        header["key_id"] = key_id
    return canonical(header)


def record_hash(record: dict[str, Any], payload_text: str | None = None) -> str:
    """SHA-256 over the canonical JSON of the record's header and then of its payload."""
    header = header_text(
        record["seq"],
        record["at"].isoformat(),
        record["actor"],
        record["action"],
        record["subject"],
        record["ruleset_version"],
        record["prev_hash"],
        record.get("key_id"),
    )
    if payload_text is None:
        payload_text = canonical(record["payload"])
    return hashlib.sha256(f"{header}\n{payload_text}".encode()).hexdigest()
