"""The keys that authenticate audit records (HMAC-SHA256), kept outside the database.

Someone who can write the database but not read `WNB_AUDIT_KEY` (or its file in `WNB_SECRETS_DIR`) can
recompute every SHA-256 hash of the chain, but not the MAC each record and the head carry. Each MAC names
its key by id, so keys rotate: the first key of the setting writes, the others still verify older records.

An engine opened by `open_database` carries the keys of the settings it was opened with (`bind`), so every
writer and verifier on its connections finds them without being handed them.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine

from wnb.core.errors import WnbError
from wnb.settings import AUDIT_KEY_MISSING, Settings, load_settings


@dataclass(frozen=True)
class AuditKeys:
    """The audit keys by id; the first writes. `required`: production, where no key means refusing to work."""

    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    required: bool = False

    @classmethod
    def of(cls, keys: Mapping[str, str], required: bool = False) -> AuditKeys:
        return cls({key_id: secret.encode() for key_id, secret in keys.items()}, required)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditKeys:
        return cls.of(settings.audit_keys(), required=settings.is_production)

    @property
    def current(self) -> str | None:
        """The id of the key new records are written with (None: no key)."""
        return next(iter(self.secrets), None)

    def writing_key(self) -> str | None:
        """The key id to write with; refuses (naming the setting) in production when there is none."""
        if self.current is None and self.required:
            raise WnbError(f"refusing to write the audit log: {AUDIT_KEY_MISSING}")
        return self.current

    def check_can_verify(self) -> None:
        if not self.secrets and self.required:
            raise WnbError(f"refusing to verify the audit log: {AUDIT_KEY_MISSING}")

    def has(self, key_id: str) -> bool:
        return key_id in self.secrets

    def record_mac(self, key_id: str, record_hash: str) -> str:
        """The MAC of a record: over its hash, which covers its content, its number, its key id and the chain."""
        return hmac.digest(self.secrets[key_id], record_hash.encode(), "sha256").hex()

    def head_mac(self, key_id: str, seq: int, head_hash: str) -> str:
        """The MAC of the chain's head (its own form, so no record's MAC can be copied into the head)."""
        return hmac.digest(self.secrets[key_id], f"head:{seq}:{head_hash}".encode(), "sha256").hex()

    def matches(self, expected: str, stored: str | None) -> bool:
        return stored is not None and hmac.compare_digest(expected, stored)


def new_key_entry(key_id: str) -> str:
    """A fresh `ID:SECRET` entry for WNB_AUDIT_KEY: 32 random bytes, hex."""
    return f"{key_id}:{secrets.token_hex(32)}"


_BOUND: WeakKeyDictionary[Engine, AuditKeys] = WeakKeyDictionary()


def bind(engine: Engine, keys: AuditKeys) -> None:
    """Give `engine`'s connections these keys for writing and verifying the audit log."""
    _BOUND[engine] = keys


def keys_for(connection: Connection) -> AuditKeys:
    """The keys bound to the connection's engine, else those of the settings (WNB_AUDIT_KEY, WNB_MODE)."""
    bound = _BOUND.get(connection.engine)
    return bound if bound is not None else AuditKeys.from_settings(load_settings())
