"""What every command shares: the database, errors in one Chinese line, money."""
from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn

import click
from sqlalchemy.exc import DBAPIError

from engine.vocabulary import money as _money
from store.db import Database, masked
from store.errors import StoreError, storage_reason


def fail(message: str) -> NoReturn:
    click.secho(f"错误：{message}", fg="red", err=True)
    sys.exit(1)


def db_handle() -> Database:
    """The configured database, at the current schema (an upgrade is idempotent)."""
    db = Database()
    try:
        db.upgrade()
    except DBAPIError as e:
        fail(f"数据库 {masked(db.url)} 不可用或不可写（{storage_reason(e)}）")
    return db


def run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call a store function; its errors end the command with one Chinese line (no trace)."""
    try:
        return fn(*args, **kw)
    except StoreError as e:
        details = "；".join(str(p) for p in getattr(e, "problems", [])[:20])
        fail(e.message if not details or details in e.message else f"{e.message}：{details}")
    except DBAPIError as e:
        fail(f"数据库操作失败（{storage_reason(e)}）")
    except ValueError as e:
        fail(str(e))


def money(v: Any) -> str:
    return "—" if v is None else _money(v)
