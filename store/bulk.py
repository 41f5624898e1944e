"""Bulk operations inside the caller's transaction. Inserts of many rows: COPY on PostgreSQL,
one executemany of a prepared INSERT on SQLite; both skip SQLAlchemy's per-row statement
bookkeeping (which cost more than the database itself for a window's decisions). `among`:
membership in a long list of keys.

Values are converted as SQLAlchemy would bind them (JSON columns as JSON text, a Python
None in a JSON column as JSON null, dates and decimals by the dialect's own processors),
so rows read back through the ORM exactly as if inserted with `insert(table)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

import orjson
from sqlalchemy import JSON, LargeBinary, String, Table, TypeDecorator, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.models import Coded, Digest

if TYPE_CHECKING:
    from store.db import Database

CHUNK = 5000


def _json_text(v: Any) -> str:
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        import json

        return json.dumps(v, ensure_ascii=False)


def _converters(conn: Connection, table: Table, cols: Sequence[str]) -> list[Optional[Callable]]:
    out: list[Optional[Callable]] = []
    pg = conn.dialect.name == "postgresql"
    for name in cols:
        typ = table.c[name].type
        if isinstance(typ, JSON):
            out.append(_json_text)  # None → "null", as SQLAlchemy's JSON type stores it
        elif isinstance(typ, (Digest, Coded)):
            out.append(typ._cached_bind_processor(conn.dialect))  # hex → its bytes, a word → its letter
        elif pg:
            out.append(None)  # psycopg adapts str, int, Decimal, bool, bytes, datetime
        else:
            out.append(typ._cached_bind_processor(conn.dialect))
    return out


_NOTHING = object()


def insert_rows(conn: Connection, table: Table, cols: Sequence[str], rows: Iterable[Sequence[Any]],
                skip_conflicts_on: Sequence[str] | None = None) -> int:
    """Insert `rows` (tuples in the order of `cols`); returns the number sent. With
    `skip_conflicts_on` (the columns of a unique key) a row whose key is taken is left out
    (ON CONFLICT DO NOTHING: the key decides a race) instead of failing the transaction."""
    conv = _converters(conn, table, cols)
    if any(conv):
        pairs = [(i, c) for i, c in enumerate(conv) if c is not None]
        # A value repeated row after row (the batch's timestamp, a shared detail) is converted
        # once: the converter's last input and output per column, compared by identity.
        last: list = [(_NOTHING, None)] * len(conv)

        def prep(r):
            r = list(r)
            for i, c in pairs:
                v = r[i]
                was, out = last[i]
                if v is not was:
                    out = c(v)
                    last[i] = (v, out)
                r[i] = out
            return r

        rows = (prep(r) for r in rows)
    n = 0
    names = ", ".join(cols)
    skip = f' ON CONFLICT ({", ".join(skip_conflicts_on)}) DO NOTHING' if skip_conflicts_on else ""
    if conn.dialect.name == "postgresql":
        cur = conn.connection.driver_connection.cursor()
        target = f'"{table.name}"'
        if skip_conflicts_on:
            # COPY into a scratch table, then one INSERT … SELECT that skips taken keys: as one
            # pipelined INSERT per row, a window's awards took the close about twice as long
            target = f'"yagu_staging_{table.name}"'
            cur.execute(f'CREATE TEMP TABLE {target} ON COMMIT DROP AS SELECT {names} FROM "{table.name}" WITH NO DATA')
        statement = f"COPY {target} ({names}) FROM STDIN"
        try:
            with cur.copy(statement) as cp:
                for r in rows:
                    cp.write_row(r)
                    n += 1
            if skip_conflicts_on:
                statement = f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {target}{skip}'
                cur.execute(statement)
                cur.execute(f"DROP TABLE {target}")
        except conn.dialect.dbapi.IntegrityError as e:    # as SQLAlchemy reports it elsewhere
            raise IntegrityError(statement, None, e) from e
        finally:
            cur.close()
        return n
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _ in cols)}){skip}'
    batch: list = []
    for r in rows:
        batch.append(tuple(r))
        if len(batch) >= CHUNK:
            conn.exec_driver_sql(sql, batch)
            n += len(batch)
            batch = []
    if batch:
        conn.exec_driver_sql(sql, batch)
        n += len(batch)
    return n


class _ArrayLiteral(TypeDecorator):
    """A text array written as PostgreSQL's literal (`{"a","b"}`), bound as varchar[] as is."""
    impl = ARRAY(String)
    cache_ok = True

    def bind_processor(self, dialect):
        return None


class _DigestArrayLiteral(_ArrayLiteral):
    """A bytea array written as PostgreSQL's literal, bound as bytea[] as is."""
    impl = ARRAY(LargeBinary)
    cache_ok = True


def among(s: Session | Connection, column, values) -> ColumnElement:
    """`column IN values` for a long list of keys (a batch, a chunk), as one parameter: an
    array on PostgreSQL (`= ANY`), a JSON array on SQLite (`json_each`). A statement of a
    thousand placeholders is rendered and parsed anew on every call, which cost more than
    running it."""
    dialect = s.dialect if isinstance(s, Connection) else s.get_bind().dialect
    digests = isinstance(column.type, Digest)
    if dialect.name == "postgresql":
        # written as an array literal here: psycopg's list dumper cost 3 µs a key
        if digests:     # each in bytea's input form: a backslash, x and the hex
            literal = "{" + ",".join('"\\\\x' + bytes.fromhex(v).hex() + '"' for v in values) + "}"
            return column == any_(bindparam(None, literal, type_=_DigestArrayLiteral()))
        literal = "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                                 for v in values) + "}"
        # typed as the array it is, so PostgreSQL reads it as a constant (and hashes it):
        # cast from text it scanned the whole array for every row
        return column == any_(bindparam(None, literal, type_=_ArrayLiteral()))
    # SQLite: one JSON array parameter too; SQLAlchemy renders a thousand placeholders anew
    # for every statement, which cost a window's evaluation more CPU than running them
    keys = func.json_each(bindparam(None, orjson.dumps(list(values)).decode(), type_=String)).table_valued("value")
    if digests:         # JSON holds the hex; unhex() is registered on every connection (store.db)
        return column.in_(select(func.unhex(keys.c.value)))
    return column.in_(select(keys.c.value))


# Rows a bulk job must have written before it refreshes the planner's statistics.
ANALYZE_AFTER = 1000


def refresh_statistics(db: Database, rows: int, *tables: Table) -> None:
    """After a bulk job wrote `rows` rows into `tables`, on PostgreSQL: their planner
    statistics. Autovacuum refreshes them a minute or more later; until then 100,000 rows look
    like none, and 公示 joined its 120,000 decisions by as many index lookups and a sort on
    disk (0.87 s instead of 0.25 s, twice per close). SQLite plans by its indexes alone."""
    if rows < ANALYZE_AFTER or db.engine.dialect.name != "postgresql":
        return
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{t.name}"' for t in tables))
