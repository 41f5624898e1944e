"""Files the store keeps, on SQLite and PostgreSQL: uploaded materials checked by their content,
size-limited, content-addressed by SHA-256 under the data directory and readable by the owner
only; the SQLite database file private, never made writable behind the operator's back."""
from __future__ import annotations

import hashlib
import os
import stat

import pytest
from sqlalchemy import func, select

from store import cases, files
from store.db import Database
from store.errors import ValidationFailed
from store.models import Material
from store.paths import data_dir
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, app_of, db, evaluate, grant_profile, open_h1, store_url, submit_all,
)

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
GRANT = "device-registration-grant"
ORIGIN = "device_registrations[0].origin"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_uploads_are_recognised_by_their_content_not_their_name():
    assert files.check("扫描件.pdf", PDF) == "application/pdf"
    assert files.check("照片.pdf", JPEG) == "image/jpeg"          # the name says PDF, the bytes JPEG
    assert files.check("证书", PNG) == "image/png"
    for name, data in (("证书.pdf", b"<html><script>alert(1)</script>"), ("a.png", b"MZ\x90\x00" + b"\x00" * 60),
                       ("空.pdf", b"")):
        with pytest.raises(ValidationFailed) as e:
            files.check(name, data, "files.registration_certificate")
        (p,) = e.value.problems
        assert p.path == "files.registration_certificate" and name[:2] in p.message


def test_the_size_limit_is_named_in_the_message(monkeypatch):
    monkeypatch.setattr(files, "MAX_BYTES", 512 * 1024)
    files.check("小.pdf", PDF + b"\x00" * (512 * 1024 - len(PDF)))
    with pytest.raises(ValidationFailed) as e:
        files.check("大.pdf", PDF + b"\x00" * (512 * 1024))
    assert "超过 512 KB 的上限" in e.value.problems[0].message
    monkeypatch.setattr(files, "MAX_BYTES", 10 * 1024 * 1024)
    with pytest.raises(ValidationFailed, match="超过 10 MB 的上限"):
        files.check("大.pdf", PDF + b"\x00" * (10 * 1024 * 1024))


def test_materials_are_stored_once_by_sha256_under_the_data_dir_owner_only(db):
    open_h1(db)
    a, b = (s.application_id for s in submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2, origin=None)]))
    evaluate(db, "2026-H1")
    body = PNG + os.urandom(32)
    sha = hashlib.sha256(body).hexdigest()
    cases.upload_material(db, a, GRANT, "registration_certificate", "注册证.png", body, actor="经办人")
    cases.upload_material(db, a, GRANT, "business_license", "执照.pdf", body, actor="经办人")   # same bytes
    path = data_dir() / "materials" / sha[:2] / sha
    assert path.read_bytes() == body and _mode(path) == 0o600 and _mode(path.parent) == 0o700
    with db.read_session() as s:
        rows = list(s.execute(select(Material).where(Material.application_id == a).order_by(Material.id)).scalars())
    assert [(m.sha256, m.size, m.content_type) for m in rows] == [(sha, len(body), "image/png")] * 2
    m, data = cases.material_file(db, a, rows[0].id)
    assert data == body and m.filename == "注册证.png"
    with pytest.raises(FileNotFoundError):
        files.get("../" + sha[3:])
    # An upload that is not acceptable leaves the 补正 untouched: nothing stored, nothing judged.
    cases.issue_one_time_notices(db, "2026-H1", today=AFTER_H1)
    before = app_of(db, b)
    with pytest.raises(ValidationFailed) as e:
        cases.submit_correction(db, b, {ORIGIN: "self_developed"},
                                [(GRANT, "registration_certificate", "证书.pdf", b"not a pdf")], actor="企业",
                                today=AFTER_H1)
    assert e.value.problems[0].path == "files.registration_certificate"
    after = app_of(db, b)
    assert (after.state, after.revision, after.snapshot_hash) == (before.state, before.revision, before.snapshot_hash)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).where(Material.application_id == b)) == 0


def test_the_sqlite_file_is_private_and_never_made_writable(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'yagu.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    for suffix in ("", "-wal", "-shm"):
        p = tmp_path / "new" / f"yagu.db{suffix}"
        if p.exists():
            assert _mode(p) == 0o600, suffix
    old = tmp_path / "old.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    Database(f"sqlite:///{old}").dispose()
    assert _mode(old) == 0o600
    old.chmod(0o444)                    # an operator made it read-only: it stays read-only
    Database(f"sqlite:///{old}").dispose()
    assert _mode(old) == 0o400


def test_files_held_for_a_next_try_are_the_sessions_own_and_go_away():
    """store.held: a file is given back only to the session that holds it, under its key and
    digest; a wrong file chosen in its place forgets it; a day later, or once dropped, it is gone."""
    from store import held

    pdf = b"%PDF-1.4\n%%EOF\n"
    index = held.hold("session-a", [("b|c|m", "证明.pdf", pdf)])
    digest = index["b|c|m"]["digest"]
    assert held.take("session-a", "b|c|m", digest) == ("证明.pdf", pdf)
    assert held.take("session-b", "b|c|m", digest) is None          # another enterprise's session
    assert held.take("session-a", "b|c|m", "0" * 64) is None         # a digest it does not hold
    assert held.take("session-a", "b|c|x", digest) is None           # another material
    folder = next(p for p in (data_dir() / "held").iterdir() if (p / digest).exists())
    assert stat.S_IMODE(os.stat(folder / digest).st_mode) == 0o600
    assert held.hold("session-a", [], forget=["b|c|m"]) == {}         # a wrong file chosen in its place
    held.hold("session-a", [("b|c|m", "证明.pdf", pdf)])
    old = folder.stat().st_mtime - held.KEEP_SECONDS - 10
    os.utime(folder, (old, old))
    held.hold("session-c", [])                                         # any hold clears what is a day old
    assert not folder.exists()
    held.hold("session-c", [("k|l|m", "a.pdf", pdf)])
    held.drop("session-c")
    assert held.held("session-c") == {}
