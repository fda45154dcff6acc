"""Open the database named by WNB_DATABASE_URL: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import SQLModel

from wnb.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

DEFAULT_URL = "sqlite:///wnb.db"


def database_url() -> str:
    return os.environ.get("WNB_DATABASE_URL", DEFAULT_URL)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, issue BEGIN, so each transaction can take the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # 64 MiB of page cache (the default is 2 MiB): a year's indexes outgrow 2 MiB, and every lookup of
        # a person's history then reads pages back from the operating system.
        cursor.execute("PRAGMA cache_size=-65536")
        # Checkpoint the WAL every 10,000 pages (40 MB) rather than 1,000: an ingestion chunk writes thousands
        # of index pages, and each checkpoint copies them to the database file (about 8% of a year's ingest).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writing transaction takes the write lock up front (IMMEDIATE), so two writers never both read the
        # audit chain's tail and then append; reads stay deferred and never wait for a writer (WAL).
        write = connection.get_execution_options().get("wnb_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first statement."""
    with engine.connect() as connection:
        connection.execution_options(wnb_write=True)
        with connection.begin():
            yield connection


def open_database(url: str | None = None, create: bool = True) -> Engine:
    """An engine for `url` (default WNB_DATABASE_URL), with the schema created when missing."""
    url = url or database_url()
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    if create:
        SQLModel.metadata.create_all(engine)
    return engine
