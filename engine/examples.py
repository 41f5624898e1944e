"""Run the worked examples of rule files (`yagu rules test`)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from engine.evaluator import Evaluator
from engine.loader import Benefit, WindowContext
from engine.results import BenefitResult
from engine.vocabulary import OUTCOME, STATUS, money


@dataclass
class ExampleRun:
    benefit: str
    name: str
    line: int
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _window(raw: dict[str, Any] | None, ev: Evaluator, as_of: date) -> WindowContext | None:
    if raw is None:
        return None
    base = ev.book.calendar.by_id(raw.get("id", "")) or ev.book.calendar.next_window(as_of)
    fields = {k: raw[k] for k in ("id", "label", "opens_on", "closes_on", "coverage_from", "coverage_to")
              if k in raw}
    return replace(base, **fields, amounts=raw.get("amounts") or {}, provisional=False)


def _compare(expect: dict[str, Any], r: BenefitResult, where: str, texts: dict[str, str] | None = None) -> list[str]:
    """What differs from the example's expectation, in the rule file's words (`texts`: each
    criterion's text, for one the result does not list)."""
    out = []
    yes = {True: "是", False: "否"}
    def said(v, words: dict) -> str:        # the file's code, and what it means
        return f"{words.get(v, v)}（{v}）" if v is not None else "无"

    if "status" in expect and expect["status"] != r.status:
        out.append(f"{where}判定结论应为 {said(expect['status'], STATUS)}，实际为 {said(r.status, STATUS)}")
    got = {c.id: c for c in r.criteria}
    for cid, want in (expect.get("criteria") or {}).items():
        c = got.get(cid)
        if c is None or c.outcome != want:
            unjudged = "未评估" + ("（该日期不在政策有效期内）" if r.status == "not_in_force" else "")
            out.append(f"{where}条件 {cid}「{c.text if c else (texts or {}).get(cid, '')}」应为 {said(want, OUTCOME)}，"
                       f"实际为 {said(c.outcome, OUTCOME) if c else unjudged}")
    if "amount_cny" in expect and expect["amount_cny"] != r.amount_cny:
        if not (expect["amount_cny"] is not None and r.amount_cny is not None
                and abs(expect["amount_cny"] - r.amount_cny) < 0.005):
            out.append(f"{where}金额应为 {money(expect['amount_cny']) if expect['amount_cny'] is not None else '无'}，"
                       f"实际为 {money(r.amount_cny) if r.amount_cny is not None else '无（规则未算出金额）'}")
    if "amount_provisional" in expect and expect["amount_provisional"] != r.amount_provisional:
        out.append(f"{where}参考金额标记应为 {yes.get(expect['amount_provisional'], expect['amount_provisional'])}，"
                   f"实际为 {yes[bool(r.amount_provisional)]}")
    if "missing_facts" in expect and sorted(expect["missing_facts"]) != r.missing_facts:
        out.append(f"{where}缺失事实应为 {'、'.join(sorted(expect['missing_facts'])) or '无'}，"
                   f"实际为 {'、'.join(r.missing_facts) or '无'}")
    # texts a decision on this date cites (`cites`) or must not cite (`not_cites`), by 文号
    cited = "\n".join(b for c in r.criteria for b in c.legal_basis)
    for doc in expect.get("cites") or []:
        if doc not in cited:
            out.append(f"{where}应引用 {doc}，实际未引用")
    for doc in expect.get("not_cites") or []:
        if doc in cited:
            out.append(f"{where}不应引用 {doc}（该日期不适用）")
    if "route" in expect and expect["route"] != (r.route.id if r.route else None):
        out.append(f"{where}适用情形应为 {expect['route']}，实际为 {r.route.id if r.route else '无'}")
    if "amount_note" in expect and expect["amount_note"] not in (r.amount_note or ""):
        out.append(f"{where}金额说明应含“{expect['amount_note']}”，实际为“{r.amount_note or ''}”")
    return out


def _compare_conflict(expect: dict[str, Any], ev: Evaluator, benefit: Benefit, profile: dict[str, Any],
                      as_of: date) -> list[str]:
    """`conflict: {with: [...], choice: id}`: the tax self-assessment of the tax year groups
    these preferences as one choice and, where `choice` is given, names it the cheaper one."""
    want = expect["conflict"]
    tsa = ev.tax_self_assessment(profile, ev.tax_year_of(as_of))
    group = next((c for c in tsa.conflicts if benefit.id in c.benefits), None)
    members = sorted([benefit.id, *want.get("with", [])])
    if group is None or sorted(group.benefits) != members:
        return [f"应与 {'、'.join(want.get('with', []))} 构成择一享受，实际为 "
                f"{'、'.join(group.benefits) if group else '无'}"]
    if want.get("choice"):
        title = ev.book.benefits[want["choice"]].spec.title
        if f"选择“{title}”税负最低" not in (group.choice or ""):
            return [f"应建议选择“{title}”，实际为“{group.choice or '无建议'}”"]
    return []


def run_examples(ev: Evaluator, benefit: Benefit) -> list[ExampleRun]:
    from engine.yamlsource import load_yaml
    doc = load_yaml(benefit.source)
    runs = []
    texts = {c.id: c.text for c in benefit.spec.criteria}
    for i, ex in enumerate(benefit.spec.examples):
        run = ExampleRun(benefit.id, ex.name, doc.line_of(("examples", i)))
        window = _window(ex.window, ev, ex.as_of)
        awarded = None if ex.awarded is None else {f"{benefit.id}|{n}" for n in ex.awarded}
        try:
            resp = ev.evaluate(ex.profile, ex.as_of, [benefit.id], window=window, awarded=awarded)
        except Exception as exc:  # an example that crashes the engine is a failing example
            run.mismatches.append(f"评估出错：{type(exc).__name__}: {exc}")
            runs.append(run)
            continue
        if "subjects" in ex.expect:
            by_subject = {(r.subject.id if r.subject else None): r for r in resp.results}
            for sid, exp in ex.expect["subjects"].items():
                r = by_subject.get(sid)
                if r is None:
                    run.mismatches.append(f"没有注册证 {sid} 的结果")
                else:
                    run.mismatches += _compare(exp, r, f"[{sid}] ", texts)
        else:
            run.mismatches += _compare(ex.expect, resp.results[0], "", texts)
        if "conflict" in ex.expect:
            run.mismatches += _compare_conflict(ex.expect, ev, benefit, ex.profile, ex.as_of)
        runs.append(run)
    return runs
