"""What every command shares: the database, errors in one Chinese line, money."""
from __future__ import annotations

import sys
from datetime import date
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
        # the problems the message does not already spell out (it often lists them one a line)
        left = [str(p) for p in getattr(e, "problems", [])[:20] if str(p) not in e.message]
        fail(f"{e.message}：{'；'.join(left)}" if left else e.message)
    except DBAPIError as e:
        fail(f"数据库操作失败（{storage_reason(e)}）")
    except ValueError as e:
        fail(str(e))


def money(v: Any) -> str:
    return "—" if v is None else _money(v)


class _Date(click.ParamType):
    """A date typed as 2026-06-30; a wrong one is said in words, not as a strptime format."""
    name = "日期"

    def get_metavar(self, param, ctx=None) -> str:
        return "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"“{value}”不是有效日期，请写作 年-月-日，例如 2026-06-30", param, ctx)


DATE = _Date()
