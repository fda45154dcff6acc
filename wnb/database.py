"""The database the settings name, opened for an entry point (the command line, `wnb serve` and its API app,
scenario runs, simulations): WNB_DATABASE_URL, with the audit keys of WNB_AUDIT_KEY and the mode of WNB_MODE.

wnb.store.db reads no settings: it opens the URL and keys it is handed (`open_engine`); this is where the
settings are read for it.
"""

from __future__ import annotations

from sqlalchemy import Engine

from wnb.core.errors import WnbError
from wnb.settings import AUDIT_KEY_MISSING, load_settings
from wnb.store.audit_keys import AuditKeys
from wnb.store.db import open_engine


def database_url() -> str:
    """WNB_DATABASE_URL (default: a SQLite file in the current directory)."""
    return load_settings().database_url


def open_database(url: str | None = None, create: bool = True, audit_keys: AuditKeys | None = None) -> Engine:
    """An engine for `url` (default WNB_DATABASE_URL), with the schema migrated to the newest revision.

    Its connections write and verify the audit log with `audit_keys` (default: WNB_AUDIT_KEY's); in
    production, without that key, nothing is opened: every command would write or verify the log blind.
    """
    settings = load_settings()
    if audit_keys is None and settings.is_production and settings.audit_key is None:
        raise WnbError(f"refusing to open the database in production mode: {AUDIT_KEY_MISSING}")
    return open_engine(url or settings.database_url, audit_keys or AuditKeys.from_settings(settings), create)
