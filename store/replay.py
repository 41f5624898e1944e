"""Replay and rule-change impact.

*Replay* re-decides every stored evaluation of a window from its archived ruleset and its
stored profile, with the ledger state it was decided under (read back from what the decision
observed), and reports any difference: the proof, years later, that a decision is
reproducible — what a 兑现 audit asks for.

*Impact* decides the same applications under another rule directory (or another date) and
lists every decision that would change: the criteria that change it and the amount
difference, for a policy analyst before a new round's notice changes a condition or an amount.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterator, Optional

from sqlalchemy import select

from engine import Evaluator, RuleLoadError, load_rulebook
from engine.vocabulary import STATUS, cn_date
from store import profiles, rulesets
from store import decisions as D
from store import windows as W
from store.applications import chunks
from store.collector import bulk_work
from store.db import Database
from store.errors import RowProblem, ValidationFailed
from store.evalworker import parse_stored_profile
from store.exports import xlsx_bytes
from store.models import Enterprise, Evaluation, ProfileSnapshot


@dataclass
class Difference:
    uscc: str
    enterprise_name: str
    application_id: Optional[str]
    benefit_id: str
    subject_id: str
    before: str                 # status of record
    after: str                  # status now
    criteria: list[str]         # criterion ids whose outcome differs
    amount_before: Optional[float]
    amount_after: Optional[float]
    criteria_text: list[str] = field(default_factory=list)     # the same criteria, as worded


@dataclass
class ReplayReport:
    window_id: str
    evaluations: int = 0
    decisions: int = 0
    identical: int = 0
    not_archived: int = 0
    seconds: float = 0.0
    differences: list[Difference] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.evaluations / self.seconds if self.seconds else 0.0


BATCH = 500


def _rows(db: Database, window_id: str, applicants_only: bool) -> tuple[int, Iterator[list[tuple]]]:
    """(how many, the stored evaluations in batches): read a batch at a time, so a window of
    100,000 never sits in memory at once."""
    where = [Evaluation.window_id == window_id, Evaluation.results.is_not(None)]
    if applicants_only:
        where.append(Evaluation.application_id.is_not(None))
    with db.read_session() as s:
        W.get(s, window_id)
        keys = s.connection().scalars(select(Evaluation.uscc).where(*where).order_by(Evaluation.uscc)).all()

    def batches() -> Iterator[list[tuple]]:
        for chunk in chunks(keys, BATCH):
            with db.read_session() as s:
                rows = s.connection().execute(
                    select(Evaluation.uscc, Evaluation.application_id, Evaluation.ruleset_version,
                           Evaluation.results, ProfileSnapshot.packed, Enterprise.name, Evaluation.grants,
                           Evaluation.ruleset_seq)
                    .join(ProfileSnapshot, ProfileSnapshot.hash == Evaluation.profile_hash)
                    .join(Enterprise, Enterprise.uscc == Evaluation.uscc)
                    .where(*where, Evaluation.uscc.in_(chunk)).order_by(Evaluation.uscc)).all()
                texts = profiles.texts(s, [r[4] for r in rows])
                ids = rulesets.GrantIds(s)
                listed = [set(D.unpack_grants(r[6], ids[r[7]])) for r in rows]
            yield [(*r[:4], t, r[5], g) for r, t, g in zip(rows, texts, listed)]
    return len(keys), batches()


def _decide(ev: Evaluator, profiles: list, ledgers: list, as_of: date, ctx, asked: bool = False) -> list[list]:
    """Each profile's verdicts with its own ledger state (and, `asked`, the missing facts);
    those that saw nothing awarded elsewhere (nearly all) in one batch call, which decides
    each exactly as alone (a tested property)."""
    out: list = [None] * len(profiles)
    plain = [i for i, led in enumerate(ledgers) if led == frozenset()]
    if plain:
        for i, v in zip(plain, ev.decide_many([profiles[i] for i in plain], as_of=as_of, window=ctx,
                                              awarded=frozenset(), missing_facts=asked)):
            out[i] = v
    for i, led in enumerate(ledgers):
        if out[i] is None:
            (out[i],) = ev.decide_many([profiles[i]], as_of=as_of, window=ctx, awarded=led, missing_facts=asked)
    return out


def _batch_inputs(db: Database, batch: list[tuple], registry_of: Callable) -> list[tuple]:
    """(row, evaluator of its version or None, stored decisions, parsed profile) per row."""
    out = []
    for row in batch:
        uscc, app_id, version, blob, profile, name, _ = row
        try:
            ev = rulesets.evaluator_for(db, version)
        except Exception:  # noqa: BLE001 — reported as not archived
            out.append((row, None, None, None))
            continue
        stored = rulesets.decisions_of(db, version, blob)
        out.append((row, ev, stored, parse_stored_profile(profile, registry_of(ev))))
    return out


def _compare(ev_a: Evaluator, a: D.Decided, b: D.Decided, ev_b: Evaluator, as_of_a: date, as_of_b: date) -> list[str]:
    """Criterion ids whose outcome differs (a criterion only one ruleset has counts as changed,
    unless the other has the same condition under another id: a renamed criterion is the same
    criterion, and changes only if its outcome does)."""
    def criteria(ev: Evaluator, d: D.Decided, as_of: date) -> dict:
        if d.benefit_id not in ev.book.benefits:
            return {}
        return {c.id: c for c in ev.book.benefits[d.benefit_id].criteria if c.applies_on(as_of)}

    ca, cb = criteria(ev_a, a, as_of_a), criteria(ev_b, b, as_of_b)
    x, y = dict(zip(ca, a.outcomes)), dict(zip(cb, b.outcomes))
    renamed: dict[str, str] = {}        # old id → new id, the same condition
    for old in (c for c in x if c not in y):
        new = next((c for c in y if c not in x and c not in renamed.values() and cb[c].cond == ca[old].cond), None)
        if new is not None:
            renamed[old] = new
    changed = []
    for cid in dict.fromkeys([*x, *y]):
        if cid in renamed:
            if x[cid] != y[renamed[cid]]:
                changed.append(renamed[cid])
        elif cid not in renamed.values() and x.get(cid) != y.get(cid):
            changed.append(cid)
    return changed


def _text_of(other: Evaluator, base: Evaluator, benefit_id: str, criterion: str) -> str:
    """A criterion as its rule file words it, when no result of the enterprise words it (a
    result without the criteria, e.g. no certificate to judge): parameters by their description."""
    for ev in (other, base):
        b = ev.book.benefits.get(benefit_id)
        c = next((c for c in b.criteria if c.id == criterion), None) if b else None
        if c is not None:
            def param(m: re.Match) -> str:
                p = b.spec.parameters.get(m.group(1)[6:]) if m.group(1).startswith("param.") else None
                return p.description if p else "（见规则文件）"
            return re.sub(r"\{([^{}]+)\}", param, c.text)
    return "（该条件已不在规则中）"


def _texts(resp) -> dict[tuple, str]:
    """(benefit, subject, criterion id) → the criterion as the response words it."""
    return {(r.benefit_id, r.subject.id if r.subject else "", c.id): c.text for r in resp.results for c in r.criteria}


@bulk_work()
def replay(db: Database, window_id: str, *, progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    report = ReplayReport(window_id)
    with db.read_session() as s:
        w = W.get(s, window_id)
    ctx = W.context(w)
    total, batches = _rows(db, window_id, applicants_only=False)
    t0 = time.perf_counter()
    i = -1
    for batch in batches:
        inputs = _batch_inputs(db, batch, lambda ev: ev.registry)
        report.not_archived += sum(1 for _, ev, _, _ in inputs if ev is None)
        inputs = [x for x in inputs if x[1] is not None]
        decided: list = []
        for version in dict.fromkeys(row[2] for row, *_ in inputs):
            mine = [x for x in inputs if x[0][2] == version]
            ev = mine[0][1]
            ledgers = [D.ledger_of(ev.registry, st) for _, _, st, _ in mine]
            # records written by earlier code hold their missing facts: those are checked too
            asked = any(d.missing_facts is not None for _, _, st, _ in mine for d in st)
            decided += zip(mine, ledgers, _decide(ev, [p for *_, p in mine], ledgers, w.as_of, ctx, asked))
        for ((uscc, app_id, version, _, _, name, grants), ev, stored, profile), ledger, now in decided:
            i += 1
            words = (lambda ev=ev, profile=profile, ledger=ledger:
                     ev.evaluate(profile, as_of=w.as_of, window=ctx, awarded=ledger))
            _replay_one(report, ev, stored, now, words, uscc, app_id, name, w, grants)
            if progress and ((i + 1) % 200 == 0 or i + 1 == total):     # and the last
                progress(i + 1, total)
    report.seconds = time.perf_counter() - t0
    return report


def _replay_one(report: "ReplayReport", ev: Evaluator, stored: list, now: list, words: Callable,
                uscc: str, app_id, name: str, w, listed: set) -> None:
    """Compare one enterprise's stored decisions with the same decided again (`now`), and
    each grant decision with what its evaluation lists for the window to read and pay
    (`listed`: store.decisions.unpack_grants); the criteria of a difference are worded by
    `words()`, the full result decided again."""
    fresh = {(d.benefit_id, d.subject_id): d for d in now}
    texts: dict | None = None
    report.evaluations += 1
    for d in stored:
        report.decisions += 1
        n = fresh.get((d.benefit_id, d.subject_id))
        if n is not None and (d.status, d.amount_cny, d.amount_provisional, d.outcomes, d.observed) == \
                (n.status, n.amount_cny, n.amount_provisional, n.outcomes, n.observed) and \
                (d.missing_facts is None or d.missing_facts == n.missing_facts) and \
                (d.kind != "grant" or _listed(d) in listed):
            report.identical += 1
            continue
        changed = _compare(ev, d, n, ev, w.as_of, w.as_of) if n else []
        if texts is None:
            texts = _texts(words())
        report.differences.append(Difference(
            uscc, name, app_id, d.benefit_id, d.subject_id, d.status, n.status if n else "（无）",
            changed, d.amount_cny, n.amount_cny if n else None,
            [texts.get((d.benefit_id, d.subject_id, c), c) for c in changed]))


def _listed(d: D.Decided) -> tuple:
    """A grant decision as its evaluation lists it."""
    return d.benefit_id, d.subject_id, d.status, D.plain(d.amount_cny), bool(d.amount_provisional)


@dataclass
class ImpactReport:
    window_id: str
    base_version: str
    other_version: str
    as_of: date
    decisions: int = 0
    changes: list[Difference] = field(default_factory=list)
    other_name: str = ""        # the other rules as staff know them (a draft's folder); "" = the rules in force
    notes: list[str] = field(default_factory=list)      # changes of the other rules this window cannot show
    window_label: str = ""


@bulk_work()
def other_rules(rules_dir: str | Path):
    """The rule directory to compare with, loaded; every problem of it at once, with file and
    line, as the job's failure (ValidationFailed)."""
    try:
        return load_rulebook(rules_dir)
    except RuleLoadError as e:
        raise ValidationFailed([RowProblem(str(p)) for p in e.problems],
                               f"另一套规则有 {len(e.problems)} 个问题，未比较：\n"
                               + "\n".join(str(p) for p in e.problems)) from None


def impact(db: Database, window_id: str, rules_dir: str | Path | None = None, as_of: date | None = None,
           *, progress: Callable[[int, int], None] | None = None) -> ImpactReport:
    """Every decision of the window's applicants that another ruleset (or date) would change,
    or make anew (a benefit the other rules add)."""
    other = Evaluator(other_rules(rules_dir)) if rules_dir else rulesets.current()
    with db.read_session() as s:
        w = W.get(s, window_id)
    ctx = W.context(w)
    when = as_of or w.as_of
    total, batches = _rows(db, window_id, applicants_only=True)
    report = ImpactReport(window_id, "", other.ruleset_version, when,
                          other_name=Path(rules_dir).name if rules_dir else "", window_label=w.label)
    if rules_dir:
        base = rulesets.evaluator_for(db, w.ruleset_version) if w.ruleset_version else rulesets.current()
        report.notes = unseen_changes(base.book, other.book, w, when)
    i = -1
    for batch in batches:
        inputs = _batch_inputs(db, batch, lambda ev: other.registry)
        missing = next((row[2] for row, ev, _, _ in inputs if ev is None), None)
        if missing:
            rulesets.evaluator_for(db, missing)          # raises NotFound naming the version
        ledgers = [D.ledger_of(ev.registry, st) for _, ev, st, _ in inputs]
        decided = _decide(other, [p for *_, p in inputs], ledgers, when, ctx)
        for ((uscc, app_id, version, _, profile, name, _), ev, stored, parsed), ledger, now in zip(inputs, ledgers, decided):
            i += 1
            report.base_version = version
            words = (lambda parsed=parsed, ledger=ledger:
                     other.evaluate(parsed, as_of=when, window=ctx, awarded=ledger))
            _impact_one(report, ev, other, stored, now, words, profile, uscc, app_id, name, w, when, ctx)
            if progress and ((i + 1) % 200 == 0 or i + 1 == total):     # and the last
                progress(i + 1, total)
    return report


def _impact_one(report: ImpactReport, ev: Evaluator, other: Evaluator, stored: list, now: list,
                words: Callable, profile: dict, uscc: str, app_id, name: str, w, when: date, ctx) -> None:
    """The decisions of one enterprise that `other` changes or adds; the criteria of a change
    are worded by `words()`, the full result under `other`."""
    fresh = {(d.benefit_id, d.subject_id): d for d in now}
    texts: dict | None = None
    base_texts: dict | None = None
    for d in stored:
        if d.kind != "grant" and d.benefit_id not in other.book.benefits:
            continue
        report.decisions += 1
        n = fresh.get((d.benefit_id, d.subject_id))
        after = n.status if n else "（已删除）"
        # out of force on the date: no criterion was judged, none is the reason
        changed = _compare(ev, d, n, other, w.as_of, when) if n and n.status != "not_in_force" else []
        amount_after = n.amount_cny if n else None
        if d.status != after or changed or d.amount_cny != amount_after:
            if texts is None:
                texts = _texts(words())
            if any((d.benefit_id, d.subject_id, c) not in texts for c in changed) and base_texts is None:
                # a criterion `other` does not word (dropped, or not in force on its date)
                base_texts = _texts(D.explain(ev, parse_stored_profile(profile, ev.registry), w.as_of, ctx, stored))
            worded = [texts.get((d.benefit_id, d.subject_id, c)) or (base_texts or {}).get(
                (d.benefit_id, d.subject_id, c)) or _text_of(other, ev, d.benefit_id, c) for c in changed]
            report.changes.append(Difference(uscc, name, app_id, d.benefit_id, d.subject_id, d.status, after,
                                             changed, d.amount_cny, amount_after, worded))
    decided = {(d.benefit_id, d.subject_id) for d in stored}
    for (bid, sid), n in fresh.items():     # decisions only `other` makes (e.g. a new benefit)
        if (bid, sid) not in decided:
            report.decisions += 1
            report.changes.append(Difference(uscc, name, app_id, bid, sid, "（无）", n.status, [], None,
                                             n.amount_cny))


def unseen_changes(base, other, w, when: date) -> list[str]:
    """Why a change in the other rules may change nothing here, in words: a window keeps the
    dates it was opened with, its round notice's amounts replace the rules' amount tables, and
    a dated value applies only from its date (an analyst saw “0 项会改变” and no reason)."""
    out = []
    if base.calendar.spec != other.calendar.spec:
        out.append("另一套规则修改了默认日历（windows.yaml）：已开设的批次按开设时确定的受理期、覆盖期和判定日期判定，"
                   "不受影响")
    for bid, b in other.benefits.items():
        mine = base.benefits.get(bid)
        if mine is None:
            continue
        for name, param in b.spec.parameters.items():
            old = mine.spec.parameters.get(name)
            if old is None or [v.model_dump() for v in old.values] == [v.model_dump() for v in param.values]:
                continue
            said = f"参数“{param.description}”（{b.spec.title}）"
            if name in (w.amounts or {}) or f"{bid}.{name}" in (w.amounts or {}):
                out.append(f"{said}已由本批次设定的申报通知金额取代：另一套规则中的改动不影响本批次")
                continue
            now, then = old.at(when), param.at(when)
            if (now and now.value) == (then and then.value):
                starts = sorted(v.from_ for v in param.values if v.model_dump() not in
                                [x.model_dump() for x in old.values] and v.from_ > when)
                if starts:
                    out.append(f"{said}的新取值自 {cn_date(starts[0])}起施行，晚于判定日期 {cn_date(when)}："
                               f"可按 {cn_date(starts[0])}比较（判定日期改为该日，所有回溯期限随之改变）")
    return out


IMPACT_HEADERS = ["统一社会信用代码", "企业名称", "申报编号", "事项", "注册证编号", "现结论", "新结论",
                  "结论改变的条件", "现支持金额（元）", "新支持金额（元）", "金额差额（元）"]


ONLY_AMOUNT = "（条件结论不变，仅金额改变）"
# a criterion's outcome changes, the verdict and the amount do not (what a one-time notice asks changes)
ONLY_CRITERIA = "（判定结论和金额不变）"


def impact_rows(report: ImpactReport, titles: dict[str, str]) -> list[list]:
    rows = []
    for c in report.changes:
        # an amount only where it is paid (符合条件), as the totals count it: the columns add up to them
        before = c.amount_before if c.before == "eligible" else None
        after = c.amount_after if c.after == "eligible" else None
        diff = None if before is None and after is None else (after or 0) - (before or 0)
        why = "；".join(c.criteria_text) or (ONLY_AMOUNT if c.before == c.after else "")
        if c.criteria_text and c.before == c.after and c.amount_before == c.amount_after:
            why += ONLY_CRITERIA
        rows.append([c.uscc, c.enterprise_name, c.application_id or "", titles.get(c.benefit_id, c.benefit_id),
                     c.subject_id, STATUS.get(c.before, c.before), STATUS.get(c.after, c.after),
                     why, before, after, diff])
    return rows


def impact_totals(report: ImpactReport) -> dict:
    """What the changes add up to: amounts of the changed decisions before and after, each
    counted only where the decision is eligible (an amount awaiting information pays nothing),
    and the difference (what a new round's budget needs); how many move from one verdict to
    another; how many change only a criterion's outcome."""
    before = sum(c.amount_before or 0 for c in report.changes if c.before == "eligible")
    after = sum(c.amount_after or 0 for c in report.changes if c.after == "eligible")
    moves: dict[str, int] = {}
    for c in report.changes:
        if c.before != c.after:
            key = f"{STATUS.get(c.before, c.before)} → {STATUS.get(c.after, c.after)}"
            moves[key] = moves.get(key, 0) + 1
    same = sum(c.before == c.after and c.amount_before == c.amount_after for c in report.changes)
    return {"amount_before": before, "amount_after": after, "amount_diff": after - before, "moves": moves,
            "criteria_only": same}


def impact_title(report: ImpactReport) -> str:
    """What was compared, in words: the rules in force with a draft (by its folder's name) or
    on another date; the versions (their hashes) last, for the record."""
    other = f"规则“{report.other_name}”" if report.other_name else "现行规则"
    same = report.base_version == report.other_version or not report.base_version
    versions = (f"规则版本 {report.other_version.partition('-')[0]}" if same else
                f"规则版本：现行 {report.base_version.partition('-')[0]}，比较 {report.other_version.partition('-')[0]}")
    same_only = impact_totals(report)["criteria_only"]
    window = f"“{report.window_label}”（{report.window_id}）" if report.window_label else f"申报批次 {report.window_id}"
    return (f"{window}：现行判定与{other}（判定日期 {cn_date(report.as_of)}）的比较，"
            f"共 {report.decisions} 项判定，{len(report.changes)} 项会改变"
            + (f"（其中 {same_only} 项只是条件结论改变，判定结论和金额不变）" if same_only else "")
            + f"。{versions}")


def impact_xlsx(report: ImpactReport, titles: dict[str, str]) -> bytes:
    t = impact_totals(report)
    totals = [["合计（会改变的各项）", len(report.changes), None, None, None],
              ["现金额合计", None, t["amount_before"], None, None],
              ["新金额合计", None, t["amount_after"], None, None],
              ["金额差额合计", None, t["amount_diff"], None, None]]
    totals += [[f"结论改变：{k}", n, None, None, None] for k, n in t["moves"].items()]
    totals += [[f"说明：{note}", None, None, None, None] for note in report.notes]
    return xlsx_bytes(impact_title(report), "规则变化影响", IMPACT_HEADERS, impact_rows(report, titles),
                      [r[:3] for r in totals], ["汇总", "项数", "金额（元）"])
