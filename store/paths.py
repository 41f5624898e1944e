"""Where the product keeps its files: one private data directory, never the working tree.

`YAGU_DATA_DIR` (default `$XDG_DATA_HOME/yagu`, i.e. `~/.local/share/yagu`) holds the SQLite
database, uploaded materials (content-addressed), job outputs, access-code lists and, in
`rules-drafts/` (or `YAGU_RULES_DRAFTS`), the rule directories staff may compare a window
with on the console and through the API. The
directory is created mode 0700 and every file the product writes there mode 0600: they hold
plaintext access codes and enterprise data.
"""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    base = os.environ.get("YAGU_DATA_DIR")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(xdg) / "yagu"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_dir(*parts: str) -> Path:
    path = data_dir().joinpath(*parts)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write a file readable by its owner only, atomically (no half-written file remains)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def rules_drafts() -> Path:
    """Where rule directories to compare with (impact) are put on the server."""
    return Path(os.environ.get("YAGU_RULES_DRAFTS") or data_dir() / "rules-drafts")


def draft_names() -> list[str]:
    root = rules_drafts()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def draft_rules(name: str) -> str:
    """A rule directory staff named on the console or through the API: one of rules_drafts(),
    by its name (or its full path there). Any other path of the server is refused, so that
    the console cannot be used to look around the server's files."""
    from store.errors import RowProblem, ValidationFailed

    root = rules_drafts().resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_dir():
        names = "、".join(draft_names()) or "（目前没有）"
        raise ValidationFailed([RowProblem(f"没有名为“{name}”的规则草稿目录。可比较的目录放在服务器的 {root} 下：{names}",
                                           path="rules_dir")], "未分析：")
    return str(path)
