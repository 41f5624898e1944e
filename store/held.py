"""Files of a 补正 sent back with problems, held for the enterprise's next try.

A refused 补正 stores nothing (one answer, every problem at once), and a browser cannot refill
a file input: the enterprise had to choose every file again, on a phone too. The files that
passed their own checks are held here, under the enterprise's session (never its id in
clear), until the 补正 goes through, the session ends or a day passes; the form then sends
only which held file stands for which material.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from store.paths import private_dir, write_private

KEEP_SECONDS = 24 * 3600


def _dir(session_id: str) -> Path:
    return private_dir("held", hashlib.sha256(session_id.encode()).hexdigest()[:32])


def _index(folder: Path) -> dict[str, dict]:
    try:
        return json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def hold(session_id: str, files: list[tuple[str, str, bytes]], forget: list[str] = ()) -> dict[str, dict]:
    """Hold (key, filename, data) files for this session, and no longer those of the keys in
    `forget` (a wrong file chosen in their place); returns every held file by key:
    {"filename", "digest"}. A file held again for a key replaces the one before."""
    _forget_old()
    folder = _dir(session_id)
    index = {k: v for k, v in _index(folder).items() if k not in forget}
    for key, filename, data in files:
        digest = hashlib.sha256(data).hexdigest()
        write_private(folder / digest, data)
        index[key] = {"filename": filename, "digest": digest}
    write_private(folder / "index.json", json.dumps(index, ensure_ascii=False).encode("utf-8"))
    return index


def held(session_id: str) -> dict[str, dict]:
    return _index(_dir(session_id))


def take(session_id: str, key: str, digest: str) -> tuple[str, bytes] | None:
    """The file held for `key`, if the form still names it (its digest); None otherwise."""
    entry = held(session_id).get(key)
    if not entry or entry["digest"] != digest:
        return None
    try:
        return entry["filename"], (_dir(session_id) / digest).read_bytes()
    except OSError:
        return None


def drop(session_id: str) -> None:
    shutil.rmtree(_dir(session_id), ignore_errors=True)


def _forget_old() -> None:
    root = private_dir("held")
    cutoff = time.time() - KEEP_SECONDS
    for folder in root.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
