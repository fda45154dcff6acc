"""The newest revision of the packaged migrations, read from their files without Alembic or SQLAlchemy.

Alembic costs a fifth of a second of CPU to import, SQLAlchemy a third: a database already at this revision
(nearly always) is recognised by one SELECT on its `alembic_version` table (wnb.store.schema, wnb.store.quick).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.MULTILINE)


@lru_cache(maxsize=1)
def newest_file_revision() -> str:
    """The revision of the newest migration file by number (versions/NNNN_what.py); tests/store/test_migrations.py
    checks that it is Alembic's head.

    Read from the file's `revision = "..."` line: a revision may be named (`0010_task_assignee`) so that
    branches adding migrations in parallel do not collide, and then it is more than the file's number.
    """
    newest = max(VERSIONS.glob("[0-9]*_*.py"), key=lambda path: path.name.partition("_")[0])
    found = _REVISION.search(newest.read_text(encoding="utf-8"))
    assert found is not None, f"{newest.name} names no revision"
    return found[1]
