"""Rulesets stored once by version, and the one Evaluator provider of the process.

Every evaluation records the version of the rules that decided it; the rule files of that
version are archived here (`archive`) the first time it decides anything. `evaluator_for`
rebuilds an Evaluator from an archived version — exactly the rules of the day, even after
`rules/` changed — which is what replay, impact runs and every rebuilt explanation use.
`current()` is the Evaluator of the rules in force (YAGU_RULES_DIR or the shipped rules),
shared by the API, the CLI and the notices.
"""
from __future__ import annotations

import json
import tempfile
import threading
import zlib
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine import Evaluator, Rulebook, load_rulebook
from engine.version import ENGINE_VERSION
from store.db import Database
from store.decisions import Decided, Packing, dictionary_of, grant_ids_of, keysets_of, unpack
from store.errors import NotFound
from store.models import Ruleset, utcnow

_lock = threading.Lock()
_current: Evaluator | None = None
_archived: dict[str, Evaluator] = {}      # version → evaluator of the archived files
_packings: dict[str, Packing] = {}        # version → how its records are packed, as stored
_making: dict[str, tuple] = {}            # version → its dictionary and key sets, once made
_ARCHIVE_CACHE = 8


def current() -> Evaluator:
    """The Evaluator of the rules in force (compiled once per process)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Evaluator(load_rulebook())
    return _current


def use(evaluator: Evaluator) -> None:
    """Make `evaluator` the process's current one (the API's factory and tests pass theirs)."""
    global _current
    _current = evaluator


def archive(s: Session, ev: Evaluator) -> tuple[int, Packing]:
    """Store the rule files of `ev`'s rulebook under its version (once; concurrent writers
    agree). Returns the version's number in this database, which evaluations refer to, and
    how its decision records are packed, as stored with it (made and stored here the first
    time, also for a version archived before records had one; a version stored with a
    dictionary but no key sets keeps packing its rows with their keys)."""
    book = ev.book
    row = s.get(Ruleset, book.version)
    if row is not None and row.pack_dictionary is not None and row.grant_ids is not None:
        return row.seq, Packing(bytes(row.pack_dictionary), row.pack_keys, row.grant_ids)
    if row is not None and row.pack_dictionary is not None:    # archived before its grant lists were numbered
        s.execute(update(Ruleset).where(Ruleset.version == book.version, Ruleset.grant_ids.is_(None))
                  .values(grant_ids=grant_ids_of(book)))
        return _stored(s, book.version)
    zdict, keys = _made(ev)
    if row is not None:
        s.execute(update(Ruleset).where(Ruleset.version == book.version, Ruleset.pack_dictionary.is_(None))
                  .values(pack_dictionary=zdict, pack_keys=keys, grant_ids=grant_ids_of(book)))
    else:
        blob = zlib.compress(json.dumps(book.sources, ensure_ascii=False, sort_keys=True).encode(), 9)
        insert = postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert
        for _ in range(5):      # another version archived meanwhile may take the next number
            seq = s.scalar(select(func.coalesce(func.max(Ruleset.seq), 0))) + 1
            s.execute(insert(Ruleset).values(version=book.version, engine_version=ENGINE_VERSION, files=blob,
                                             pack_dictionary=zdict, pack_keys=keys, grant_ids=grant_ids_of(book),
                                             created_at=utcnow(), seq=seq)
                      .on_conflict_do_nothing())
            if s.scalar(select(Ruleset.seq).where(Ruleset.version == book.version)) is not None:
                break
        else:
            raise RuntimeError(f"ruleset {book.version} could not be numbered")
    return _stored(s, book.version)


def _stored(s: Session, version: str) -> tuple[int, Packing]:
    seq, zdict, keys, grants = s.execute(select(Ruleset.seq, Ruleset.pack_dictionary, Ruleset.pack_keys,
                                                Ruleset.grant_ids).where(Ruleset.version == version)).one()
    return seq, Packing(bytes(zdict), keys, grants or ())


class GrantIds(dict):
    """seq → the grant benefits of the ruleset so numbered in this database, as its
    evaluations' grant lists number them (store.decisions.unpack_grants); () for one archived
    before they were. Read once per ruleset by whoever reads a window's grant lists."""

    def __init__(self, s: Session):
        super().__init__()
        self._s = s

    def __missing__(self, seq: int) -> tuple[str, ...]:
        found = self[seq] = tuple(self._s.scalar(select(Ruleset.grant_ids).where(Ruleset.seq == seq)) or ())
        return found


def _made(ev: Evaluator) -> tuple[bytes, list[list[str]]]:
    """A version's dictionary and key sets, made once per process (the dictionary runs the
    rule files' examples)."""
    version = ev.ruleset_version
    with _lock:
        made = _making.get(version)
    if made is None:
        made = dictionary_of(ev), keysets_of(ev.book)
        with _lock:
            if len(_making) >= _ARCHIVE_CACHE:
                _making.clear()
            _making[version] = made
    return made


def decisions_of(db: Database, version: str, blob: bytes, s: Session | None = None) -> list[Decided]:
    """A stored decision record, read as its version's stored packing says. `s`: the
    transaction that may have stored both (see `packing`)."""
    return unpack(blob, packing(db, version, s))


def packing(db: Database, version: str, s: Session | None = None) -> Packing | None:
    """How a version's decision records are packed, as stored (None: its records are plain).
    Read in `s` when given: a transaction that archived a version and stored records with it
    (a 补正 judged under rules released since the window's judging) reads them back before
    its commit, which no other session sees yet."""
    with _lock:
        if version in _packings:
            return _packings[version]
    query = select(Ruleset.pack_dictionary, Ruleset.pack_keys).where(Ruleset.version == version)
    if s is not None:
        row = s.execute(query).first()
    else:
        with db.read_session() as rs:
            row = rs.execute(query).first()
    if row is not None and row[0] is not None:
        found = Packing(bytes(row[0]), row[1])
        if s is None:       # committed: it never changes once stored
            with _lock:
                _packings[version] = found
        return found
    return None


def evaluator_for(db: Database, version: str) -> Evaluator:
    """The Evaluator of an archived version (the current one when the versions match)."""
    cur = current()
    if version == cur.ruleset_version:
        return cur
    with _lock:
        ev = _archived.get(version)
    if ev is not None:
        return ev
    with db.read_session() as s:
        row = s.get(Ruleset, version)
        if row is None or row.files is None:
            raise NotFound(f"规则版本 {version} 未存档，无法重建该版本的判定")
        files = json.loads(zlib.decompress(row.files))
    ev = Evaluator(load_files(files))
    with _lock:
        if len(_archived) >= _ARCHIVE_CACHE:
            _archived.pop(next(iter(_archived)))
        _archived[version] = ev
    return ev


def book_for(db: Database, version: str | None) -> Rulebook:
    """The rulebook of a stored version, for the names and labels of what it decided (the
    rules in force when no version is given or its files are not archived)."""
    if version:
        try:
            return evaluator_for(db, version).book
        except NotFound:
            pass
    return current().book


def load_files(files: dict[str, str]) -> Rulebook:
    """A rulebook from archived file texts (written to a private temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="yagu-rules-") as tmp:
        root = Path(tmp) / "rules"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return load_rulebook(root)


def known_versions(db: Database) -> dict[str, bool]:
    """Every stored version → whether its files are archived."""
    with db.read_session() as s:
        return {v: f for v, f in s.execute(select(Ruleset.version, Ruleset.files.is_not(None)))}
