"""Decisions stored once and rebuilt: the compact record of an evaluation and its explanation.

An evaluation stores, per benefit result, only what the engine decided (engine.results.Verdict):
the status, the amount, one outcome letter per criterion and the values each criterion read.
Texts, citations, thresholds and materials belong to the ruleset, which is archived by version
(store.rulesets); the missing facts are derived from the stored profile by the same ruleset.
`explain` rebuilds the full results from them, so a page, an export or a re-rendered notice
shows a decision exactly as it was made, even after `rules/` has changed. (Records that
earlier code wrote also hold their missing facts; those are shown as stored.)
"""
from __future__ import annotations

import zlib
from datetime import date
from typing import Any, Optional, Sequence

import orjson

from engine import Evaluator, WindowContext
from engine.results import OUTCOME_CODE, EligibilityResponse, Verdict

OUTCOME = {v: k for k, v in OUTCOME_CODE.items()}
_PLAIN = zlib.compressobj(1)
WITH_DICTIONARY = b"\x01"      # rows with their keys, compressed with the ruleset's stored dictionary
POSITIONAL = b"\x02"           # what each criterion read as values only, with the ruleset's key sets


class Packing:
    """How the records of one ruleset are packed, as stored with it (store.rulesets): a zlib
    preset dictionary and the key sets of what its criteria read. A record then holds each
    criterion's values without their keys, plus the number of its key set: 2,050 bytes of
    JSON become 870, 180 compressed instead of 280. Without key sets (a ruleset archived
    before 0012) rows keep their keys."""

    __slots__ = ("zdict", "keys", "_index", "grants")

    def __init__(self, zdict: bytes = b"", keys: Optional[Sequence[Sequence[str]]] = None,
                 grants: Sequence[str] = ()):
        self.zdict = zdict
        self.keys = None if keys is None else tuple(tuple(k) for k in keys)
        self._index = None if self.keys is None else {k: i for i, k in enumerate(self.keys)}
        self.grants = tuple(grants)     # the ruleset's grant benefits, as its grant lists number them

    def __reduce__(self):           # sent to the evaluation's worker processes
        return Packing, (self.zdict, self.keys, self.grants)


PLAIN = Packing()
_DICTIONARY_BYTES = 4096


def keysets_of(book) -> list[list[str]]:
    """Every key set a criterion's observed values can have in this ruleset: the facts each
    criterion reads, in its order, and a subject list alone (a per-certificate benefit
    decided without certificates)."""
    sets: dict[tuple[str, ...], None] = {}
    for b in book.benefits.values():
        for c in b.criteria:
            sets[tuple(dict.fromkeys(c.reads))] = None
        if b.spec.unit != "enterprise":
            sets[(book.fields.list_of(b.spec.unit).name,)] = None
    return [list(k) for k in sets]


def dictionary_of(ev: Evaluator) -> bytes:
    """A zlib preset dictionary for the positional records of one ruleset: the values an
    enumerated fact takes, the shape of each benefit's row, and the records of the rule files'
    own worked examples (what real records look like). Stored with the ruleset and read back
    from there to decode, so a change to this function never touches records already stored."""
    book = ev.book
    keys = Packing(b"", keysets_of(book))
    values = "".join(f'"{v}",' for f in book.fields.facts.values() for v in (getattr(f.spec, "values", None) or {}))
    rows = []
    for b in book.benefits.values():
        obs = ",".join(f"[{keys._index[tuple(dict.fromkeys(c.reads))]}" + ",null" * len(dict.fromkeys(c.reads)) + "]"
                       for c in b.criteria)
        rows.append(f'["{b.id}","","{b.spec.kind}","needs_info",null,false,"{"p" * len(b.criteria)}",[{obs}],null]')
    words = '"eligible","ineligible","not_applicable","needs_info",true,false,null,0,'
    shape = (values + words + "[" + ",".join(rows) + "]").encode()[-32768:]
    # 4 KB in all, the shape last (nearest, so cheapest to refer to): a larger dictionary
    # made records no smaller (26 KB: 199 against 198 bytes) and packing them twice as slow
    # (36 against 17 µs a record), the cost being in copying the primed compressor.
    room = max(0, _DICTIONARY_BYTES - len(shape))
    examples: list[bytes] = []          # the last examples of the rule files, up to `room`
    for b in reversed(book.benefits.values()):
        for ex in reversed(b.spec.examples):
            if sum(map(len, examples)) >= room:
                break
            try:
                examples.append(orjson.dumps(_rows(ev.decide_many([ex.profile], as_of=ex.as_of)[0], keys)))
            except Exception:  # noqa: BLE001 — an example the engine refuses shapes no record
                continue
    seen = b"".join(reversed(examples))
    return (seen[max(0, len(seen) - room):] if room else b"") + shape


# A stored decision is the engine's verdict, as it was (engine.results.Verdict).
Decided = Verdict


def _keyed(verdicts: list[Verdict]) -> list[list]:
    """The rows of a record whose observed values keep their keys (plain, or 0x01)."""
    return [[v.benefit_id, v.subject_id, v.kind, v.status, v.amount_cny, v.amount_provisional, v.outcomes,
             v.observed, v.missing_facts] for v in verdicts]


def _rows(verdicts: list[Verdict], packing: Packing) -> list[list]:
    """The rows of a positional record (KeyError: a key set the ruleset does not list)."""
    index = packing._index
    return [[v.benefit_id, v.subject_id, v.kind, v.status, v.amount_cny, v.amount_provisional, v.outcomes,
             [[index[tuple(o)], *o.values()] for o in v.observed], v.missing_facts] for v in verdicts]


def pack(verdicts: list[Verdict], packing: Packing = PLAIN) -> bytes:
    """The compact, compressed record of one enterprise's verdicts, packed as its ruleset's
    stored `packing` says."""
    if not packing.zdict:
        co = _PLAIN.copy()
        return co.compress(orjson.dumps(_keyed(verdicts))) + co.flush()
    kind, rows = WITH_DICTIONARY, None
    if packing.keys is not None:
        try:
            kind, rows = POSITIONAL, _rows(verdicts, packing)
        except KeyError:        # a key set the ruleset did not list: this record keeps its keys
            kind = WITH_DICTIONARY
    co = _primed(packing.zdict)
    return kind + co.compress(orjson.dumps(rows if rows is not None else _keyed(verdicts))) + co.flush()


_PRIMED: dict[bytes, Any] = {}


def _primed(zdict: bytes):
    """A compressor that has read `zdict`. Reading a dictionary costs more than compressing a
    record with it (75 µs a record, measured); a copy of one primed compressor, with a window
    just large enough for the dictionary and a record and small hash tables (memLevel 4),
    costs a quarter of that. Records come out the same size and decode with the same
    dictionary as before."""
    co = _PRIMED.get(zdict)
    if co is None:
        if len(_PRIMED) >= 8:
            _PRIMED.clear()
        wbits = 13 if len(zdict) <= _DICTIONARY_BYTES else 14 if len(zdict) <= 12_000 else 15
        co = _PRIMED[zdict] = zlib.compressobj(6, zlib.DEFLATED, wbits, 4, zlib.Z_DEFAULT_STRATEGY, zdict)
    return co.copy()


def unpack(blob: bytes, packing: Optional[Packing] = None) -> list[Decided]:
    """A stored record; `packing` is its ruleset's stored one (store.rulesets.packing),
    needed by records packed with a dictionary."""
    blob = bytes(blob)
    kind = blob[:1]
    if kind in (WITH_DICTIONARY, POSITIONAL):
        if packing is None or not packing.zdict:
            raise RebuildMismatch("该判定记录需要其规则版本存档的压缩字典")
        d = zlib.decompressobj(zdict=packing.zdict)
        text = d.decompress(blob[1:]) + d.flush()
    else:
        text = zlib.decompress(blob)
    rows = orjson.loads(text)
    if kind != POSITIONAL:
        return [Decided(*row) for row in rows]
    if packing.keys is None:
        raise RebuildMismatch("该判定记录需要其规则版本存档的键表")
    keys = packing.keys
    return [Decided(b, s, k, st, a, p, o, [dict(zip(keys[e[0]], e[1:])) for e in obs], m)
            for b, s, k, st, a, p, o, obs, m in rows]


class RebuildMismatch(RuntimeError):
    """A stored record does not fit the ruleset it names (wrong criteria count or status)."""


def explain(ev: Evaluator, profile: dict, as_of: date, window: WindowContext | None,
            decided: list[Decided]) -> EligibilityResponse:
    """The full results of a stored evaluation, rebuilt with the ruleset that decided it."""
    by_key = {(d.benefit_id, d.subject_id): d for d in decided}

    def outcomes(benefit_id: str, subject_id: str) -> dict[str, str]:
        d = by_key.get((benefit_id, subject_id))
        if d is None:
            return {}
        crit = ev.book.benefits[benefit_id].criteria
        applicable = [c.id for c in crit if c.applies_on(as_of)]
        return {cid: OUTCOME[o] for cid, o in zip(applicable, d.outcomes)}

    resp = ev.explain(profile, as_of, window, outcomes, ledger_of(ev.registry, decided))
    for r in resp.results:
        d = by_key.get((r.benefit_id, r.subject.id if r.subject else ""))
        if d is None:
            raise RebuildMismatch(f"没有 {r.benefit_id} 的判定记录")
        if len(d.observed) != len(r.criteria) or r.status != d.status:
            raise RebuildMismatch(f"{r.benefit_id} 的判定记录与规则版本 {ev.ruleset_version} 不一致")
        for c, seen in zip(r.criteria, d.observed):
            c.observed = seen
        if d.missing_facts is not None:         # recorded by an earlier release: as it was
            r.missing_facts = list(d.missing_facts)
    return resp


def ledger_of(registry, decided: list[Verdict]) -> Optional[frozenset[str]]:
    """The award-ledger entries a stored evaluation saw, read back from what it observed:
    None when the ledger could not answer then."""
    paths = {p for p, f in registry.facts.items() if f.spec.derive == "award_ledger"}
    seen: set[str] = set()
    for d in decided:
        for observed in d.observed:
            for path in paths & set(observed):
                if observed[path] is None:
                    return None
                if observed[path]:
                    seen.add(f"{d.benefit_id}|{d.subject_id}")
    return frozenset(seen)


def plain(v: Any) -> Any:
    """Amounts as the contract shows them (whole yuan as integers)."""
    if v is None:
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


# --- a window's grant decisions -------------------------------------------------------------
# The grant verdicts of an evaluation (status and amount per benefit and subject) are what a
# window reads by the thousand: its counts, its lists, 公示 and the close. They are kept
# beside the record, in the evaluation's own row (evaluations.grants), so that those reads
# unpack no record: a row of their own each cost 272 bytes an application on PostgreSQL with
# its indexes (migration 0019), these about 45 in the row the evaluation has anyway.
GRANT_STATUS = {"eligible": "e", "ineligible": "i", "needs_info": "n", "not_in_force": "o"}
_GRANT_STATUS_OF = {v: k for k, v in GRANT_STATUS.items()}


def grant_ids_of(book) -> list[str]:
    """The grant benefits of a ruleset in the order its grant lists number them (stored with
    the ruleset: store.rulesets.archive)."""
    return sorted(b.id for b in book.benefits.values() if b.spec.kind == "grant")


def pack_grants(grants: Sequence[tuple], benefit_ids: Sequence[str] = ()) -> bytes:
    """(benefit_id, subject_id, status, amount, provisional) rows as stored: a JSON array of
    [benefit, subject, status letter, amount, 1 if provisional], whole yuan as integers. The
    benefit is its place in `benefit_ids` (its ruleset's grant benefits) where it has one,
    else its id (lists converted from decision rows: migration 0019)."""
    place = {b: i for i, b in enumerate(benefit_ids)}
    return orjson.dumps([[place.get(b, b), s, GRANT_STATUS[st], plain(a), 1 if p else 0]
                         for b, s, st, a, p in grants])


def unpack_grants(data: bytes | None, benefit_ids: Sequence[str] = ()) -> list[tuple]:
    """The stored grant rows, as `pack_grants` took them (none for a failed evaluation);
    `benefit_ids`: those of the ruleset that decided them."""
    if not data:
        return []
    return [(b if isinstance(b, str) else benefit_ids[b], s, _GRANT_STATUS_OF[st], a, bool(p))
            for b, s, st, a, p in orjson.loads(data)]


def grants_of(verdicts: Sequence[Verdict]) -> list[tuple]:
    """The grant rows of an evaluation's verdicts (tax preferences are the enterprise's own
    self-assessment: not a park decision, not listed)."""
    return [(v.benefit_id, v.subject_id, v.status, v.amount_cny, bool(v.amount_provisional))
            for v in verdicts if v.kind == "grant"]
