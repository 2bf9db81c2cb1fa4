"""The connection to the center's database: engines for SQLite and PostgreSQL, the schema
brought up to date with the bundled Alembic migrations, and transactions.

``Database`` is the base of ``Store``: it owns the engine and hands out transactions
(``with self._write() as conn``). SQLite runs in WAL mode; writers take the lock up front
(``BEGIN IMMEDIATE``) so concurrent requests queue instead of failing.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from todokede.errors import StoreError

MIGRATIONS = Path(__file__).parent.parent / "migrations"
_LOCK_ID = 19960808  # PostgreSQL advisory lock serialising concurrent migrations


def now() -> datetime:
    return datetime.now(UTC)


class Database:
    """An open database. Thread-safe: one serves a whole web process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queue this process's writers on a lock (woken
        # at once) rather than in SQLite's busy handler (which sleeps in growing steps);
        # other processes still wait through busy_timeout.
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
        # In-memory SQLite is one shared connection: readers must queue as well.
        memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
        self._read_lock = self._write_lock if memory else None

    @classmethod
    def open(cls, url: str) -> Self:
        """Connect to ``url`` (``sqlite:///FILE``, ``sqlite://`` in memory, or a PostgreSQL
        URL) and create or upgrade the schema."""
        url = normalise_url(url)
        try:
            engine = _engine(url)
            db = cls(engine)
            db._migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database {safe_url(url)}: {exc}") from exc
        return db

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _write(self) -> Tx:
        return Tx(self.engine, write=True, lock=self._write_lock)

    def _read(self) -> Tx:
        return Tx(self.engine, write=False, lock=self._read_lock)


class Tx:
    """``with db._write() as conn``: one transaction; database errors become
    StoreError (input errors pass through untouched)."""

    def __init__(self, engine: Engine, *, write: bool, lock: threading.RLock | None) -> None:
        self.engine = engine
        self.write = write
        self.lock = lock
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if self.lock is not None:
            self.lock.acquire()
        try:
            conn = self.engine.connect()
            if self.write:
                conn = conn.execution_options(todokede_write=True)
            conn.begin()
        except SQLAlchemyError as exc:
            if self.lock is not None:
                self.lock.release()
            raise StoreError(f"database unavailable: {exc}") from exc
        self.conn = conn
        return conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn = self.conn
        assert conn is not None
        try:
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
        except SQLAlchemyError as err:
            raise StoreError(f"database error: {err}") from err
        finally:
            conn.close()
            if self.lock is not None:
                self.lock.release()
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error: {exc}") from exc


def normalise_url(url: str) -> str:
    # psycopg 3 is the driver installed; plain postgresql:// would ask for psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    # Never print a password from the URL.
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            engine = create_engine(
                url,
                pool_size=8,
                max_overflow=16,
                connect_args={"check_same_thread": False, "timeout": 30},
            )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite would defer it).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed report survives a killed process (not a
                # power cut before the next checkpoint; use PostgreSQL for that).
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("todokede_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    # A bounded connect: submissions commit on the event loop, which must not hang.
    return create_engine(url, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 10})
