"""Database connection: engine and session factory, SQLite pragmas, Alembic upgrade.

The URL comes from ``YAGU_DATABASE_URL`` (default ``sqlite:///./yagu.db``, i.e. a file in
the working directory); any SQLAlchemy URL works, PostgreSQL via ``postgresql+psycopg://``.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///./yagu.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def database_url() -> str:
    return os.environ.get("YAGU_DATABASE_URL") or DEFAULT_URL


def make_engine(url: str | None = None, **kw) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        eng = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kw,
        )
        _sqlite_setup(eng)
        return eng
    return create_engine(url, pool_pre_ping=True, **kw)


def _sqlite_setup(eng: Engine) -> None:
    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take over transaction control from pysqlite (it defers BEGIN until the first write,
        # which lets two writers both read and then fail to upgrade their locks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn):
        # Every transaction takes the write lock up front: writers queue (busy timeout)
        # instead of deadlocking; WAL readers outside transactions are not blocked.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine + session factory. Pass it to the service functions in `store`."""

    def __init__(self, url: str | None = None, **engine_kw):
        self.url = url or database_url()
        self.engine = make_engine(self.url, **engine_kw)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.Session() as s:
            with s.begin():
                yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Read-only work; on SQLite a deferred transaction so it does not take the write lock."""
        with self.Session() as s:
            if self.is_sqlite:
                s.connection(execution_options={"sqlite_begin": "DEFERRED"})
            try:
                yield s
            finally:
                s.rollback()

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(db: Database):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic, configured here: no alembic.ini needed)."""
    from alembic import command

    command.upgrade(alembic_config(db), revision)


_default: Database | None = None


def default_database() -> Database:
    """The process-wide database of YAGU_DATABASE_URL (created on first use)."""
    global _default
    if _default is None or _default.url != database_url():
        _default = Database()
    return _default
