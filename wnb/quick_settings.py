"""The few settings a quick command reads straight from the environment, without building wnb.settings.Settings
(pydantic-settings costs about a third of a second of CPU to import and build): the log level every command
sets, and the database a listing reads (issue 17: `wnb tasks` starts at once).

They are read only when every WNB_* variable set is one of those below and plainly valid, so that Settings
would load each as it is given and refuse none: then no command misses the error a bad setting is. Otherwise
(another variable, WNB_SECRETS_DIR whose files may hold any setting, a variable given twice in different cases)
each gives None, and the caller loads Settings, which reads the value or names what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

MIN_SECRET_LENGTH = 32
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
DEFAULT_DATABASE_URL = "sqlite:///wnb.db"  # Settings.database_url's default (tests/test_settings.py checks)
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def parse_audit_keys(text: str) -> dict[str, str]:
    """`ID:SECRET[,ID:SECRET…]` → {key id: secret}, the first the key new records are written with.

    Never repeats a secret in an error: the message names the entry by its position and its id only.
    """
    keys: dict[str, str] = {}
    for number, part in enumerate(filter(None, (piece.strip() for piece in text.split(","))), start=1):
        key_id, colon, secret = part.partition(":")
        key_id = key_id.strip()
        if not colon or not _KEY_ID.match(key_id):
            raise ValueError(f"entry {number} is not ID:SECRET (the id: letters, digits, '.', '_' or '-')")
        if len(secret.strip()) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret of key {key_id!r} is shorter than {MIN_SECRET_LENGTH} characters")
        if key_id in keys:
            raise ValueError(f"key {key_id!r} is given twice")
        keys[key_id] = secret.strip()
    if not keys:
        raise ValueError("no key is given: set ID:SECRET, e.g. from `wnb audit new-key`")
    return keys


def _audit_keys_valid(text: str) -> bool:
    try:
        parse_audit_keys(text)
    except ValueError:
        return False
    return True


# The variables read here, each with what Settings accepts of it (as its field and validator do).
_PLAINLY_VALID: dict[str, Callable[[str], bool]] = {
    "WNB_MODE": lambda value: value in ("development", "production"),
    "WNB_DATABASE_URL": lambda value: True,
    "WNB_RULES_DIR": bool,
    "WNB_LOG_LEVEL": lambda value: value.upper() in LOG_LEVELS,
    "WNB_AUDIT_KEY": lambda value: not value.strip() or _audit_keys_valid(value),
}


def plain_environment() -> dict[str, str] | None:
    """Every WNB_* variable by its upper-case name, when each is one read here and plainly valid; else None."""
    found: dict[str, str] = {}
    for key, value in os.environ.items():
        name = key.upper()
        if not name.startswith("WNB_"):
            continue
        valid = _PLAINLY_VALID.get(name)
        if valid is None or not valid(value) or found.get(name, value) != value:
            return None
        found[name] = value
    return found


def log_level() -> str | None:
    """WNB_LOG_LEVEL in upper case (WARNING when not set), or None: load Settings."""
    found = plain_environment()
    return None if found is None else found.get("WNB_LOG_LEVEL", "WARNING").upper()


def development_database_url() -> str | None:
    """WNB_DATABASE_URL (or its default) in development mode; None in production mode, or: load Settings.

    Production opens every database through wnb.database.open_database, which refuses one without the audit key.
    """
    found = plain_environment()
    if found is None or found.get("WNB_MODE", "development") != "development":
        return None
    return found.get("WNB_DATABASE_URL", DEFAULT_DATABASE_URL)
