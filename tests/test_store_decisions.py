"""Decisions stored once and rebuilt from the ruleset that made them, on SQLite and PostgreSQL:
changing the rules after a window closed changes nothing of what the window shows; replay
re-decides every stored decision identically (and notices a tampered one); impact lists
exactly the decisions another ruleset flips (a hypothesis property against deciding both
rulesets directly)."""
from __future__ import annotations

import re
import zlib
from datetime import date

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from engine import WindowContext
from profiles import AS_OF, profiles
from store import awards, cases, exports, replay, rulesets
from store import profiles as P
from store import windows as W
from store.db import Database
from store.evalworker import parse_stored_profile
from store.models import Evaluation, ProfileSnapshot
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, STORES, db, evaluate, evaluator_of, grant_profile, make_profile, make_store_url,
    open_h1, rules_copy, rules_in_force, store_url, submit_all, uscc_of,
)

GRANT_FILE = "benefits/device-registration-grant.yaml"
# Edits a new round's notice might bring: a criterion's wording, the benefit's title, an amount,
# and a tax criterion's wording.
AMENDED = {
    GRANT_FILE: [("text: 企业注册地在资阳高新区（中国牙谷）", "text: 企业注册地和税收户管地均在资阳高新区"),
                 ("title: Ⅱ类、Ⅲ类医疗器械产品注册证资金支持", "title: 医疗器械注册证奖励"),
                 ("self_developed: {II: 300000, III: 500000}", "self_developed: {II: 120000, III: 500000}")],
    "benefits/small-low-profit-cit.yaml": [("text: 从业人数（", "text: 职工人数（")],
}


def _everything_the_window_shows(db, window_id: str, app_ids: list[str]) -> dict:
    return {
        "window": W.get_window(db, window_id).model_dump(),
        "details": [cases.detail(db, a, today=date(2026, 5, 1)).model_dump() for a in app_ids],
        "awards": awards.list_awards(db, window_id).model_dump(),
        "proactive": awards.proactive(db, window_id),
        "exports": [exports.export_awards(db, window_id, "csv"), exports.export_decisions(db, window_id, "csv")],
    }


def test_changing_the_rules_after_close_changes_nothing_the_window_shows(db, tmp_path, rules_in_force):
    open_h1(db)
    subs = submit_all(db, "2026-H1", [grant_profile(1, employees_avg=50), grant_profile(2, origin=None),
                                      grant_profile(3, in_park=False)])
    ids = [s.application_id for s in subs]
    evaluate(db, "2026-H1")
    awards.publish(db, "2026-H1", today=AFTER_H1)
    res = awards.close_window(db, "2026-H1", reason="测试", today=AFTER_H1)
    assert [a.amount_cny for a in res.awards] == [300000]
    before = _everything_the_window_shows(db, "2026-H1", ids)
    amended = evaluator_of(rules_copy(tmp_path, AMENDED))
    rules_in_force(amended)
    assert rulesets.current().book.benefits["device-registration-grant"].spec.title == "医疗器械注册证奖励"
    after = _everything_the_window_shows(db, "2026-H1", ids)
    assert after["details"] == before["details"]
    assert after == before
    texts = [c["text"] for g in before["details"][0]["grants"] for c in g["result"]["criteria"]]
    assert "企业注册地在资阳高新区（中国牙谷）" in texts
    assert "Ⅱ类、Ⅲ类医疗器械产品注册证资金支持" in before["exports"][0].decode("utf-8-sig")


def test_records_decode_with_the_packing_stored_with_their_ruleset(db, monkeypatch):
    """Records are packed as their ruleset's stored packing says (a dictionary made from the
    ruleset and its key sets): they take a fraction of the plain size, read back through what
    is stored even when the code that makes dictionaries and key sets changes later, and the
    records stored before (plain, or with their keys) still read."""
    from store import decisions as D

    open_h1(db)
    (sub,) = submit_all(db, "2026-H1", [grant_profile(1)])
    evaluate(db, "2026-H1")
    before = cases.detail(db, sub.application_id, today=date(2026, 5, 1)).model_dump()
    with db.read_session() as s:
        e = s.execute(select(Evaluation)).scalar_one()
        blob, version = bytes(e.results), e.ruleset_version
    packing = rulesets.packing(db, version)
    decided = D.unpack(blob, packing)
    keyed = D.pack(decided, D.Packing(packing.zdict))         # as records were stored before 0012
    plain = D.pack(decided)                                    # and before dictionaries
    assert blob[:1] == D.POSITIONAL and keyed[:1] == D.WITH_DICTIONARY
    assert len(blob) < len(keyed) and len(blob) * 4 < len(plain), (len(blob), len(keyed), len(plain))
    monkeypatch.setattr(rulesets, "dictionary_of", lambda ev: b"a different dictionary")
    monkeypatch.setattr(rulesets, "keysets_of", lambda book: [["a", "different"], ["key", "set"]])
    monkeypatch.setattr(rulesets, "_packings", {})
    monkeypatch.setattr(rulesets, "_making", {})
    assert cases.detail(db, sub.application_id, today=date(2026, 5, 1)).model_dump() == before
    for record in (keyed, plain):
        with db.session() as s:
            s.execute(Evaluation.__table__.update().values(results=record))
        assert cases.detail(db, sub.application_id, today=date(2026, 5, 1)).model_dump() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(p=profiles(), as_of=AS_OF, ledger=st.sampled_from(["none", "empty", "first"]))
def test_a_stored_verdict_is_worded_exactly_as_a_fresh_evaluation(engine_eval, p, as_of, ledger):
    """A window stores verdicts without words or missing facts; the words rebuilt from the
    record (through pack and unpack) are the fresh evaluation's, byte for byte — the missing
    facts the one-time notice lists included, whatever the award ledger said then."""
    from engine.profile import parse_profile
    from store import decisions as D

    prof = parse_profile(p, engine_eval.registry)
    certs = [r.certificate_no for r in prof.device_registrations or []]
    awarded = {"none": None, "empty": set(),
               "first": {f"device-registration-grant|{c}" for c in certs[:1]}}[ledger]
    ctx = engine_eval._next_window(as_of)
    (verdicts,) = engine_eval.decide_many([prof], as_of, window=ctx, awarded=awarded)
    packing = _packing(engine_eval)
    blob = D.pack(verdicts, packing)
    assert blob[:1] == D.POSITIONAL                   # every key set is the ruleset's
    stored = D.unpack(blob, packing)
    assert stored == verdicts
    unlisted = D.Packing(packing.zdict, [])          # no key set listed: the record keeps its keys
    kept = D.pack(verdicts, unlisted)
    assert kept[:1] == D.WITH_DICTIONARY and D.unpack(kept, unlisted) == verdicts
    rebuilt = D.explain(engine_eval, prof.as_json(), as_of, ctx, stored)
    fresh = engine_eval.evaluate(prof, as_of, window=ctx, awarded=awarded)
    assert rebuilt.model_dump() == fresh.model_dump()


_PACKINGS: dict = {}


def _packing(ev):
    """The packing a window stores with `ev`'s ruleset (made once: it runs the examples)."""
    from store import decisions as D

    if ev.ruleset_version not in _PACKINGS:
        _PACKINGS[ev.ruleset_version] = D.Packing(D.dictionary_of(ev), D.keysets_of(ev.book))
    return _PACKINGS[ev.ruleset_version]


def _profiles(n: int, seed: int = 0) -> list[dict]:
    return [make_profile(i, seed) for i in range(n)]


def test_replay_re_decides_every_stored_decision_identically(db, tmp_path, rules_in_force):
    open_h1(db)
    submit_all(db, "2026-H1", _profiles(25))
    evaluate(db, "2026-H1")
    awards.publish(db, "2026-H1", today=AFTER_H1)
    awards.close_window(db, "2026-H1", reason="测试", today=AFTER_H1)
    rules_in_force(evaluator_of(rules_copy(tmp_path, AMENDED)))     # replay uses the stored rules
    rep = replay.replay(db, "2026-H1")
    assert rep.evaluations == 25 and rep.not_archived == 0 and rep.differences == []
    # one decision per benefit (per certificate for the grant); a per-item benefit that is not
    # shown without its items (首违不罚 without a case) decides nothing
    shown = [b for b in rulesets.current().book.benefits.values() if b.spec.without_subject != "omit"]
    assert rep.decisions == rep.identical == 25 * len(shown) + sum(
        max(len(p["device_registrations"]), 1) - 1 for p in _profiles(25))
    # A stored decision altered after the fact is found, with the criterion that differs.
    with db.session() as s:
        for e in s.execute(select(Evaluation).order_by(Evaluation.uscc)).scalars():
            zdict = rulesets.packing(db, e.ruleset_version).zdict
            d = zlib.decompressobj(zdict=zdict)
            assert e.results[:1] == b"\x02"            # packed as its ruleset's packing says
            rows = orjson.loads(d.decompress(e.results[1:]) + d.flush())
            row = next((r for r in rows if r[2] == "grant" and r[3] != "eligible"), None)
            if row is not None:
                break
        row[3], row[6] = "eligible", "p" * len(row[6])
        co = zlib.compressobj(zdict=zdict)
        e.results = b"\x02" + co.compress(orjson.dumps(rows)) + co.flush()
        uscc = e.uscc
    rep = replay.replay(db, "2026-H1")
    assert len(rep.differences) == 1
    d = rep.differences[0]
    assert (d.uscc, d.benefit_id, d.before) == (uscc, row[0], "eligible") and d.after != "eligible" and d.criteria
    # A grant decision its evaluation lists otherwise than its record says (what 公示 and the
    # close read and pay) is found too, though no criterion differs.
    from store.decisions import pack_grants, unpack_grants

    with db.session() as s:
        ids = rulesets.GrantIds(s)
        e = next(e for e in s.execute(select(Evaluation).where(Evaluation.uscc != uscc)).scalars()
                 if any(g[2] == "eligible" for g in unpack_grants(e.grants, ids[e.ruleset_seq])))
        assert isinstance(orjson.loads(e.grants)[0][0], int)      # the benefit by its place in the ruleset's list
        e.grants = pack_grants([(b, sub, st, 1 if st == "eligible" else a, p)
                                for b, sub, st, a, p in unpack_grants(e.grants, ids[e.ruleset_seq])], ids[e.ruleset_seq])
        listed_wrong = e.uscc
    rep = replay.replay(db, "2026-H1")
    assert {x.uscc for x in rep.differences} == {uscc, listed_wrong}
    assert next(x for x in rep.differences if x.uscc == listed_wrong).before == "eligible"


# --- impact ------------------------------------------------------------------------------------------
CHANGES = {
    "amount": {GRANT_FILE: [("self_developed: {II: 300000, III: 500000}", "self_developed: {II: 200000, III: 500000}")]},
    "class": {GRANT_FILE: [("when: {fact: certificate.device_class, in: [II, III]}",
                            "when: {fact: certificate.device_class, in: [III]}")]},
    "employees": {"benefits/small-low-profit-cit.yaml": [("        value: 300\n", "        value: 100\n")]},
    "wording": {GRANT_FILE: [("text: 企业注册地在资阳高新区（中国牙谷）", "text: 企业注册地在资阳高新区")]},
}


def _directly(ev, profile: dict, as_of: date, ctx: WindowContext) -> dict:
    resp = ev.evaluate(parse_stored_profile(profile, ev.registry), as_of=as_of, window=ctx, awarded=frozenset())
    return {(r.benefit_id, r.subject.id if r.subject else ""): r for r in resp.results}


def _expected_changes(db, window_id: str, other, as_of: date | None) -> dict:
    """What deciding both rulesets directly says would change: key → (before, after,
    criteria, amount before, amount after)."""
    base = rulesets.current()
    with db.read_session() as s:
        w = W.get(s, window_id)
        rows = [(u, P.load(s, p)) for u, p in s.execute(
            select(Evaluation.uscc, ProfileSnapshot.packed)
            .join(ProfileSnapshot, ProfileSnapshot.hash == Evaluation.profile_hash)
            .where(Evaluation.window_id == window_id, Evaluation.application_id.is_not(None)))]
    out = {}
    for uscc, profile in rows:
        a = _directly(base, profile, w.as_of, W.context(w))
        b = _directly(other, profile, as_of or w.as_of, W.context(w))
        for key, x in a.items():
            y = b[key]
            ox, oy = {c.id: c.outcome for c in x.criteria}, {c.id: c.outcome for c in y.criteria}
            crit = [] if y.status == "not_in_force" else [    # out of force: no criterion was judged
                c for c in dict.fromkeys([*ox, *oy]) if ox.get(c) != oy.get(c)]
            if x.status != y.status or x.amount_cny != y.amount_cny or crit:
                out[(uscc, *key)] = (x.status, y.status, crit, x.amount_cny, y.amount_cny)
    return out


def _check_impact(db, window_id: str, rules_dir, as_of: date | None) -> int:
    rep = replay.impact(db, window_id, rules_dir, as_of)
    got = {(c.uscc, c.benefit_id, c.subject_id): (c.before, c.after, c.criteria, c.amount_before, c.amount_after)
           for c in rep.changes}
    assert len(got) == len(rep.changes)                 # each decision listed once
    assert got == _expected_changes(db, window_id, evaluator_of(rules_dir), as_of)
    return len(got)


@pytest.fixture(scope="module")
def change_dirs(tmp_path_factory):
    dirs = {k: rules_copy(tmp_path_factory.mktemp(k), edits) for k, edits in CHANGES.items()}
    added = rules_copy(tmp_path_factory.mktemp("added"), {"index.yaml": [
        ("  - device-registration-grant\n", "  - device-registration-grant\n  - dental-innovation-grant\n")]})
    text = (added / GRANT_FILE).read_text(encoding="utf-8")
    text = text.replace("id: device-registration-grant", "id: dental-innovation-grant", 1)
    (added / "benefits" / "dental-innovation-grant.yaml").write_text(
        text.replace("title: Ⅱ类、Ⅲ类医疗器械产品注册证资金支持", "title: 牙谷创新产品奖励", 1), encoding="utf-8")
    dirs["added"] = added
    renamed = rules_copy(tmp_path_factory.mktemp("renamed"), {})         # in_park → registered_in_park
    text = (renamed / GRANT_FILE).read_text(encoding="utf-8")
    text = re.sub(r"(criteria: \{[^}]*?)\bin_park:", r"\1registered_in_park:",
                  text.replace("  - id: in_park\n", "  - id: registered_in_park\n"))
    (renamed / GRANT_FILE).write_text(text, encoding="utf-8")
    dirs["renamed"] = renamed
    return dirs


def test_impact_lists_exactly_the_decisions_another_ruleset_flips(tmp_path, change_dirs):
    url, cleanup = make_store_url("sqlite", tmp_path)
    db = Database(url)
    runs = iter(range(1000))
    flipped = []

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(n=st.integers(3, 12), seed=st.integers(0, 10_000), change=st.sampled_from(sorted(CHANGES)),
           as_of=st.sampled_from([None, date(2026, 9, 30)]))
    def prop(n, seed, change, as_of):
        wid = f"I{next(runs)}"
        open_h1(db, wid)
        submit_all(db, wid, [make_profile(1000 * len(flipped) + i, seed) for i in range(n)])
        evaluate(db, wid)
        flipped.append(_check_impact(db, wid, change_dirs[change], as_of))

    try:
        prop()
        assert any(flipped)         # the generated cases did change decisions
    finally:
        db.dispose()
        cleanup()


@pytest.mark.parametrize("kind", STORES)
def test_impact_of_a_changed_amount_and_threshold(kind, tmp_path, change_dirs):
    url, cleanup = make_store_url(kind, tmp_path)
    db = Database(url)
    try:
        open_h1(db)
        submit_all(db, "2026-H1", [grant_profile(1, employees_avg=200, tax_collection="audit",
                                                 taxable_income_cny=1e6, total_assets_avg_cny=1e7,
                                                 restricted_industry=False),
                                   grant_profile(2, employees_avg=50), grant_profile(3, in_park=False)])
        evaluate(db, "2026-H1")
        assert _check_impact(db, "2026-H1", change_dirs["amount"], None) == 2     # two class II, self-developed
        rep = replay.impact(db, "2026-H1", change_dirs["amount"])       # what the change costs, in total
        t = replay.impact_totals(rep)
        assert t["amount_diff"] == sum((c.amount_after or 0) - (c.amount_before or 0) for c in rep.changes) != 0
        assert t["moves"] == {} and all(r[7] == replay.ONLY_AMOUNT for r in replay.impact_rows(rep, {}))
        assert "判定日期 2026年" in replay.impact_title(rep) and "-yagu" not in replay.impact_title(rep)
        rep = replay.impact(db, "2026-H1", change_dirs["class"])         # II no longer: only III
        t = replay.impact_totals(rep)
        assert rep.changes and t["amount_after"] == 0
        # the columns add up to the totals: an amount is shown only where it is paid (符合条件)
        for rep in (rep, replay.impact(db, "2026-H1", change_dirs["amount"])):
            rows, t = replay.impact_rows(rep, {}), replay.impact_totals(rep)
            assert [sum(r[i] or 0 for r in rows) for i in (8, 9, 10)] == [
                t["amount_before"], t["amount_after"], t["amount_diff"]]
            assert all(r[9] is None for r in rows if r[6] != "符合条件")
        rep = replay.impact(db, "2026-H1", change_dirs["employees"])
        (c,) = [c for c in rep.changes if c.benefit_id == "small-low-profit-cit"]
        assert (c.before, c.after, c.criteria) == ("eligible", "ineligible", ["employees"])
        (row,) = [r for r in replay.impact_rows(rep, {"small-low-profit-cit": "小型微利企业所得税优惠"})
                  if r[3] == "小型微利企业所得税优惠"]
        assert row[5:7] == ["符合条件", "不符合条件"]
        assert row[7].startswith("从业人数（") and "不超过100人" in row[7]      # the criterion as worded
        # A criterion renamed, its condition unchanged, changes nothing; its outcome changing is
        # worded by its text, never its id.
        assert replay.impact(db, "2026-H1", change_dirs["renamed"]).changes == []
        # A benefit the new rules add: each applicant's new decision is listed.
        rep = replay.impact(db, "2026-H1", change_dirs["added"])
        assert {(c.benefit_id, c.before) for c in rep.changes} == {("dental-innovation-grant", "（无）")}
        assert len(rep.changes) == 3 and all(c.after == "eligible" for c in rep.changes if c.uscc != uscc_of(3))
    finally:
        db.dispose()
        cleanup()


def test_impact_says_why_a_change_of_the_draft_changes_nothing_here(db, tmp_path):
    """A new amount from a later date, a changed calendar, and amounts the round's notice set:
    the report says why each changes nothing in this window (it said “0 项会改变”, no more)."""
    old_value = "      - from: 2022-09-19\n        value:\n"
    draft = rules_copy(tmp_path / "draft", {
        GRANT_FILE: [(old_value, "      - from: 2022-09-19\n        to: 2026-09-30\n        value:\n"),
                     ("        provisional: true\ncriteria:",
                      "        provisional: true\n      - from: 2026-10-01\n        value:\n"
                      "          \"false\":\n            self_developed: {II: 800000, III: 900000}\n"
                      "            introduced: {II: 200000, III: 400000}\n          \"true\":\n"
                      "            self_developed: {II: 1500000, III: 2000000}\n"
                      "            introduced: {II: 200000, III: 400000}\n"
                      "        reference: {basis: tonglu-2022-24, note: 草案}\n        provisional: true\ncriteria:")],
        "windows.yaml": [('opens_on: "03-01"', 'opens_on: "03-05"')]})
    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(1)])
    evaluate(db, "2026-H1")
    rep = replay.impact(db, "2026-H1", draft)
    assert rep.changes == []
    calendar, dated = rep.notes
    assert "默认日历" in calendar and "不受影响" in calendar
    assert "新取值自 2026年10月1日起施行，晚于判定日期 2026年3月31日" in dated, dated
    assert len(replay.impact(db, "2026-H1", draft, date(2026, 10, 1)).changes) == 1     # compared on that day
    W.set_amounts(db, "2026-H1", {"grant_amounts": {
        "false": {"self_developed": {"II": 250000, "III": 450000}, "introduced": {"II": 150000, "III": 350000}},
        "true": {"self_developed": {"II": 1e6, "III": 2e6}, "introduced": {"II": 150000, "III": 350000}}}})
    evaluate(db, "2026-H1")
    (_, amounts) = replay.impact(db, "2026-H1", draft, date(2026, 10, 1)).notes
    assert "申报通知金额取代" in amounts and "不影响本批次" in amounts
