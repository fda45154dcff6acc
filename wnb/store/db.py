"""Open a database by its URL: SQLite (WAL) by default, PostgreSQL in production; and its writing transactions.

It reads no settings: the entry points read them and hand over the URL, the audit keys and the mode
(wnb.database.open_database does so for them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from threading import Event, Lock, RLock, Thread
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, text

from wnb.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

if TYPE_CHECKING:
    from wnb.store.audit_keys import AuditKeys

DEFAULT_URL = "sqlite:///wnb.db"
log = structlog.get_logger("wnb.store")


def sqlite_setup(engine: Engine) -> None:
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


_WRITERS: WeakKeyDictionary[Engine, RLock] = WeakKeyDictionary()
_WRITERS_LOCK = Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[Any]:
    """On SQLite, this process's writers queue on a lock, in turn, instead of polling SQLite's busy handler
    (which sleeps in growing steps: queued writers would wait far longer than the writes take)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(engine, RLock())


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first statement."""
    with _writer_lock(engine), engine.connect() as connection:
        connection.execution_options(wnb_write=True)
        with connection.begin():
            yield connection


def ping(engine: Engine) -> None:
    """Ask the database a trivial question: raises whatever the driver raises when it does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@contextmanager
def checkpoints_beside(engine: Engine, every: float = 0.05) -> Iterator[None]:
    """SQLite: while a long run of writing transactions goes on (a file's ingestion), copy the WAL into the
    database file from a thread of its own, so the commits need not.

    Otherwise the commit that takes the WAL past `wal_autocheckpoint` pages copies them itself (and syncs the
    files) while ingestion waits: about a twelfth of ingesting a year. A passive checkpoint never blocks a
    writer nor changes what a reader sees; sqlite3 lets go of the GIL while it runs, so on a second core it
    costs ingestion nothing. The WAL then starts again from its beginning at the next transaction, so the
    commits' own checkpoint (the limit above) is left only as a backstop, should this thread fall behind.
    Other databases: nothing to do.
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    stop = Event()
    thread = Thread(target=_checkpoint_until, args=(path, stop, every), name="wnb-wal-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _checkpoint_until(path: str, stop: Event, every: float) -> None:
    try:
        with closing(sqlite3.connect(path, isolation_level=None, check_same_thread=False)) as connection:
            while not stop.wait(every):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as error:  # the commits' own checkpoints go on; nothing is lost
        log.warning("background_checkpoint_stopped", error=type(error).__name__)


def open_engine(url: str, audit_keys: AuditKeys, create: bool = True) -> Engine:
    """An engine for `url`, with the schema migrated to the newest revision (unless not `create`).

    Its connections write and verify the audit log with `audit_keys` (`required` in production: writing or
    verifying without a key is refused).
    """
    from wnb.store.audit_keys import bind

    if url.startswith("postgresql"):
        # Replicas outlive database restarts: a pooled connection is checked before use and replaced if dead.
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    else:
        engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        sqlite_setup(engine)
    if create:
        from wnb.store.schema import upgrade

        upgrade(engine)
    bind(engine, audit_keys)
    return engine
