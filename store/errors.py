"""Domain exceptions; the HTTP layer maps NotFound→404, Conflict→409, ValidationFailed→422."""
from __future__ import annotations

from dataclasses import asdict, dataclass


class StoreError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


@dataclass(frozen=True)
class RowProblem:
    """One problem in user input. For spreadsheets: sheet, row (1-based as Excel shows it)
    and column header; for a JSON profile: `path` (e.g. device_registrations[0].obtained_on)."""

    message: str
    path: str = ""
    sheet: str | None = None
    row: int | None = None
    column: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    def __str__(self) -> str:
        where = []
        if self.sheet:
            where.append(f"工作表“{self.sheet}”")
        if self.row is not None:
            where.append(f"第{self.row}行")
        if self.column:
            where.append(f"列“{self.column}”")
        if self.path:
            where.append(self.path)
        return ("，".join(where) + "：" if where else "") + self.message


class ValidationFailed(StoreError):
    def __init__(self, problems: list[RowProblem], message: str | None = None):
        self.problems = problems
        super().__init__(
            message
            or "输入有 {} 处问题：\n{}".format(len(problems), "\n".join(str(p) for p in problems))
        )


def storage_reason(exc: BaseException) -> str:
    """Why the database refused, in Chinese, from a driver error (read-only file, full disk,
    lock, connection)."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "数据库文件只读"
    if "disk" in text and "full" in text:
        return "磁盘已满"
    if "locked" in text:
        return "数据库被占用"
    return "无法连接或写入数据库"
