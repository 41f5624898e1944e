"""Where the product keeps its files: one private data directory, never the working tree.

`YAGU_DATA_DIR` (default `$XDG_DATA_HOME/yagu`, i.e. `~/.local/share/yagu`) holds the SQLite
database, uploaded materials (content-addressed), job outputs and access-code lists. The
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
