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
from typing import Any, Optional

import orjson

from engine import Evaluator, WindowContext
from engine.results import OUTCOME_CODE, EligibilityResponse, Verdict

OUTCOME = {v: k for k, v in OUTCOME_CODE.items()}
_PLAIN = zlib.compressobj(1)
WITH_DICTIONARY = b"\x01"      # a record compressed with its ruleset's stored dictionary


def dictionary_of(book) -> bytes:
    """A zlib preset dictionary for the records of one ruleset: what a record of each benefit
    looks like (its id, kind, statuses, the facts each criterion reads and the values an
    enumerated fact takes). Records then cost about a third. It is stored with the ruleset
    (store.rulesets) and read back from there to decode, so a change to this function never
    touches records already stored."""
    facts = book.fields.facts

    def seen(path: str) -> str:
        values = getattr(facts[path].spec, "values", None) if path in facts else None
        return "".join(f'"{path}":"{v}",' for v in (values or {})) + f'"{path}":null'

    rows = []
    for b in book.benefits.values():
        obs = ",".join("{" + ",".join(seen(p) for p in c.reads) + "}" for c in b.criteria)
        rows.append(f'["{b.id}","","{b.spec.kind}","needs_info",null,false,"{"p" * len(b.criteria)}",[{obs}],[]]')
    words = '"eligible","ineligible","not_applicable","needs_info",true,false,null,0,'
    return (words + "[" + ",".join(rows) + "]").encode()[-32768:]


# A stored decision is the engine's verdict, as it was (engine.results.Verdict).
Decided = Verdict


def pack(verdicts: list[Verdict], zdict: bytes = b"") -> bytes:
    """The compact, compressed record of one enterprise's verdicts; with `zdict` (its ruleset's
    stored dictionary) about a third of the size."""
    rows = [[v.benefit_id, v.subject_id, v.kind, v.status, v.amount_cny, v.amount_provisional, v.outcomes,
             v.observed, v.missing_facts] for v in verdicts]
    if not zdict:
        co = _PLAIN.copy()
        return co.compress(orjson.dumps(rows)) + co.flush()
    co = _primed(zdict)
    return WITH_DICTIONARY + co.compress(orjson.dumps(rows)) + co.flush()


_PRIMED: dict[bytes, Any] = {}


def _primed(zdict: bytes):
    """A compressor that has read `zdict`. Reading a dictionary costs more than compressing a
    record with it (75 µs a record, measured); a copy of one primed compressor, with a window
    just large enough for the dictionary and a record, costs a quarter of that. Records come
    out the same size and decode with the same dictionary as before."""
    co = _PRIMED.get(zdict)
    if co is None:
        if len(_PRIMED) >= 8:
            _PRIMED.clear()
        co = _PRIMED[zdict] = zlib.compressobj(6, zlib.DEFLATED, 14 if len(zdict) <= 12_000 else 15, zdict=zdict)
    return co.copy()


def unpack(blob: bytes, zdict: bytes | None = None) -> list[Decided]:
    """A stored record; `zdict` is its ruleset's stored dictionary (store.rulesets.dictionary),
    needed by records packed with one."""
    blob = bytes(blob)
    if blob[:1] == WITH_DICTIONARY:
        if not zdict:
            raise RebuildMismatch("该判定记录需要其规则版本存档的压缩字典")
        d = zlib.decompressobj(zdict=zdict)
        text = d.decompress(blob[1:]) + d.flush()
    else:
        text = zlib.decompress(blob)
    return [Decided(*row) for row in orjson.loads(text)]


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
