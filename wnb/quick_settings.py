"""The few settings a quick command reads straight from the environment, without building wnb.settings.Settings
(pydantic-settings costs about a third of a second of CPU to import and build): the log level every command
sets, and the database a listing reads (issue 17: `wnb tasks` starts at once).

Each gives None whenever it cannot be sure that Settings would load the same value: WNB_SECRETS_DIR is set (any
setting may then come from its files), a variable is given twice in different cases with different values, or a
value is not plainly valid. The caller then loads Settings, which reads the value or names what is wrong with it.
"""

from __future__ import annotations

import os

LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
DEFAULT_DATABASE_URL = "sqlite:///wnb.db"  # Settings.database_url's default (tests/test_settings.py checks)


def _variable(name: str) -> tuple[bool, str | None]:
    """(sure, value) of WNB_<NAME>, matched in any case as Settings does; not sure beside WNB_SECRETS_DIR."""
    wanted, values = f"WNB_{name}".upper(), set()
    for key, value in os.environ.items():
        upper = key.upper()
        if upper == "WNB_SECRETS_DIR":
            return False, None
        if upper == wanted:
            values.add(value)
    if len(values) > 1:
        return False, None
    return True, next(iter(values), None)


def log_level() -> str | None:
    """WNB_LOG_LEVEL (upper case), or None when it is not plainly one of the levels Settings accepts."""
    sure, value = _variable("log_level")
    if not sure:
        return None
    if value is None:
        return "WARNING"  # the commands' default (Settings.log_level None)
    return value.upper() if value.upper() in LOG_LEVELS else None


def development_database_url() -> str | None:
    """WNB_DATABASE_URL (or its default) in development mode; None in production mode or when not sure.

    Production opens every database through wnb.database.open_database, which refuses one without the audit key.
    """
    sure, mode = _variable("mode")
    if not sure or mode not in (None, "development"):
        return None
    sure, url = _variable("database_url")
    return (url if url is not None else DEFAULT_DATABASE_URL) if sure else None
