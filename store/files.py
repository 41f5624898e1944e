"""Uploaded material files: checked by content, stored content-addressed under the data
directory (`materials/ab/abcdef…`, mode 0600) and named by their SHA-256.

Only PDF, JPEG and PNG are accepted, recognised by their first bytes (never by the name or
the browser's content type); OFD is not accepted because no reader is available to check it.
A file is served back only as an attachment with the type found here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from store.errors import RowProblem, ValidationFailed
from store.paths import private_dir, write_private

MAX_BYTES = int(os.environ.get("YAGU_MAX_MATERIAL_BYTES") or 10 * 1024 * 1024)
TYPES = (
    (b"%PDF-", "application/pdf", "PDF"),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"),
)


def size_text(n: int) -> str:
    """10 MB, 512 KB: the limit as a reader states it."""
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} 字节"


def sniff(data: bytes) -> str | None:
    for magic, media, _name in TYPES:
        if data.startswith(magic):
            return media
    return None


def check(filename: str, data: bytes, field: str = "file") -> str:
    """The content type of an acceptable upload, or ValidationFailed naming the problem."""
    if not data:
        raise ValidationFailed([RowProblem(f"文件“{filename[:40]}”是空的", path=field)])
    if len(data) > MAX_BYTES:
        raise ValidationFailed([RowProblem(f"文件“{filename[:40]}”超过 {size_text(MAX_BYTES)} 的上限", path=field)])
    media = sniff(data)
    if media is None:
        names = "、".join(name for _, _, name in TYPES)
        raise ValidationFailed([RowProblem(f"文件“{filename[:40]}”不是 {names} 文件（按文件内容判断）",
                                           path=field)])
    return media


def _path(sha: str) -> Path:
    return private_dir("materials", sha[:2]) / sha


def put(data: bytes) -> str:
    """Store the bytes once; return their SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    path = _path(sha)
    if not path.exists():
        write_private(path, data)
    return sha


def get(sha: str) -> bytes:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise FileNotFoundError(sha)
    return _path(sha).read_bytes()
