"""Database connection: engine and session factory, SQLite pragmas, Alembic upgrade.

The URL comes from ``YAGU_DATABASE_URL`` (default: ``yagu.db`` in the data directory,
store.paths); any SQLAlchemy URL works, PostgreSQL via ``postgresql+psycopg://``. A SQLite
file is created mode 0600 (with its WAL files), as it holds enterprise data.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.paths import data_dir

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def database_url() -> str:
    return os.environ.get("YAGU_DATABASE_URL") or f"sqlite:///{data_dir() / 'yagu.db'}"


def masked(url: str) -> str:
    """The URL as it may be shown or logged: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — an unparsable URL is shown without its credentials part
        return url.split("@")[-1]


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file (and its WAL/SHM files) owner-only before SQLite does."""
    u = make_url(url)
    path = u.database
    if not path or path == ":memory:":
        return
    if path.startswith("file:") and u.query.get("uri") in ("true", "1"):
        return      # a URI opens an existing file its own way (e.g. mode=ro): nothing to create
    old = os.umask(0o077)
    try:
        for suffix in ("", "-wal", "-shm"):
            p = Path(path + suffix)
            if p.exists():
                # Take away group and other access, never add write access an operator took
                # away; a file we may not change (another owner, immutable) is left as it is.
                try:
                    mode = p.stat().st_mode & 0o777
                    if mode & 0o077:
                        p.chmod(mode & 0o700)
                except OSError:
                    pass
            elif suffix == "":
                p.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
    finally:
        os.umask(old)


def make_engine(url: str | None = None, **kw) -> Engine:
    url = url or database_url()
    # Stored JSON is written by this application (never NaN, integers within 64 bits), so the
    # faster orjson reads it alike; closing a window of 100,000 reads a JSON cell per decision.
    kw.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        eng = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kw,
        )
        _sqlite_setup(eng)
        return eng
    return create_engine(url, pool_pre_ping=True, **kw)


def _unhex(text):
    return None if text is None else bytes.fromhex(text)


def _sqlite_setup(eng: Engine) -> None:
    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take over transaction control from pysqlite (it defers BEGIN until the first write,
        # which lets two writers both read and then fail to upgrade their locks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        old = os.umask(0o077)    # the WAL and SHM files SQLite creates: owner-only too
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        finally:
            os.umask(old)
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        # SQLite has unhex() from 3.41 on; Debian 12's is 3.40 (store.bulk.among of digests)
        dbapi_conn.create_function("unhex", 1, _unhex, deterministic=True)

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
                s.expunge_all()     # what was read stays readable after the session ends
                s.rollback()

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic, configured here: no alembic.ini needed)."""
    command.upgrade(alembic_config(db), revision)


_default: Database | None = None


def default_database() -> Database:
    """The process-wide database of YAGU_DATABASE_URL (created on first use)."""
    global _default
    if _default is None or _default.url != database_url():
        _default = Database()
    return _default
