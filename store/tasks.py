"""The store's background jobs (store.jobs): what each kind does with its arguments.

Every task is resumable and idempotent, so a job re-queued after its worker died ends with
the same result.
"""
from __future__ import annotations

import re
import secrets
from datetime import date
from pathlib import Path

from engine.vocabulary import cn_date, money
from store import evaluation, jobs, replay, rulesets
from store.applications import ImportRejected, import_applications
from store.db import Database
from store.errors import RowProblem, ValidationFailed
from store.exports import csv_bytes
from store.paths import private_dir, write_private
from store.spreadsheet import IntakeLimits, open_sheets

IMPORT_SUFFIXES = (".csv", ".xlsx", ".xlsm")


@jobs.task("window.evaluate", "批量判定")
def evaluate(db: Database, ctx: jobs.JobContext, args: dict) -> dict:
    res = evaluation.evaluate_window(db, args["window_id"], actor=args.get("actor"), check=ctx.check,
                                     batch_size=args.get("batch_size") or evaluation.EVAL_BATCH,
                                     progress=lambda done, total: ctx.progress(done, total,
                                                                               f"已判定 {done}/{total} 家企业"))
    # `evaluated` counts enterprises: the applications plus known enterprises judged for 免申即享.
    return {"evaluated": res.evaluated, "skipped": res.skipped, "failed": res.failed,
            "applications": res.applications, "known_enterprises": res.known_enterprises,
            "ruleset_version": res.ruleset_version}


def evaluation_summary(r: dict) -> str:
    """What a window's evaluation did, in one sentence (the console and the command line)."""
    known = r.get("known_enterprises") or 0
    split = f"（其中申报 {r.get('applications', 0)} 份，另有 {known} 家未申报的已知企业，供免申即享）" if known else ""
    return (f"已判定 {r['evaluated']} 家企业{split}，{r['skipped']} 家无变化跳过"
            + (f"，{r['failed']} 家判定出错（已记录，见申报列表）" if r.get("failed") else ""))


@jobs.task("window.replay", "重放核验")
def replay_window(db: Database, ctx: jobs.JobContext, args: dict) -> dict:
    rep = replay.replay(db, args["window_id"], progress=lambda d, t: ctx.progress(d, t, f"已重放 {d}/{t}"))
    return {"evaluations": rep.evaluations, "decisions": rep.decisions, "identical": rep.identical,
            "not_archived": rep.not_archived, "differences": len(rep.differences),
            "rate_per_second": round(rep.rate, 1),
            "sample": [d.__dict__ for d in rep.differences[:50]]}


IMPACT_ROWS_SHOWN = 200     # on the job's page and the command line; the file holds them all


@jobs.task("window.impact", "规则变化影响分析")
def impact(db: Database, ctx: jobs.JobContext, args: dict) -> dict:
    try:
        as_of = date.fromisoformat(args["as_of"]) if args.get("as_of") else None
    except ValueError:
        raise ValidationFailed([RowProblem(f"判定日期“{args['as_of']}”无效，应写成“年-月-日”，例如 2026-06-30",
                                           path="as_of")]) from None
    rep = replay.impact(db, args["window_id"], args.get("rules_dir"), as_of,
                        progress=lambda d, t: ctx.progress(d, t, f"已比较 {d}/{t}"))
    titles = {b.id: b.spec.title for b in rulesets.current().book.benefits.values()}
    # what was compared, in the job lists and the file's name: runs are told apart
    label = (f"与“{rep.other_name}”比较，" if rep.other_name else "") + f"判定日期 {cn_date(rep.as_of)}"
    name = "-".join(["规则变化影响", args["window_id"], *([rep.other_name] if rep.other_name else []),
                     rep.as_of.isoformat()])
    ctx.add_file(re.sub(r'[\\/:*?"<>|\s]+', "_", name)[:120] + ".xlsx",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", replay.impact_xlsx(rep, titles))
    def shown(h: str, v):       # the console's table: amounts as readers write them; none paid: —
        if not h.endswith("（元）"):
            return v
        return "—" if v is None else ("+" if h == "金额差额（元）" and v > 0 else "") + money(v)

    return {"window_id": args["window_id"], "rules_dir": args.get("rules_dir") or "", "label": label,
            "base_version": rep.base_version, "other_version": rep.other_version, "as_of": rep.as_of.isoformat(),
            "title": replay.impact_title(rep), "decisions": rep.decisions, "changes": len(rep.changes),
            "notes": rep.notes, **replay.impact_totals(rep),
            # the console's and the command line's rows: the name without the USCC (the file has it)
            "rows": [{h.removesuffix("（元）"): shown(h, v) for h, v in zip(replay.IMPACT_HEADERS, r)
                      if h != "统一社会信用代码"} for r in replay.impact_rows(rep, titles)[:IMPACT_ROWS_SHOWN]]}


def impact_lines(r: dict) -> list[str]:
    """An impact job's result in sentences, as the console and the command line say it."""
    diff = r["amount_diff"]
    lines = [r["title"]]
    if r["changes"]:
        lines.append(f"会改变的各项（金额只计符合条件的）：现金额合计 {money(r['amount_before'])}，新金额合计 "
                     f"{money(r['amount_after'])}，差额 {'+' if diff > 0 else ''}{money(diff)}"
                     + "".join(f"；{k} {n} 项" for k, n in r["moves"].items()) + "。")
    lines += [f"说明：{note}。" for note in r.get("notes") or []]
    return lines


def check_upload(data: bytes, filename: str) -> None:
    """What can be told of an import file before its job is queued, cheaply and within the
    intake's limits: its type, the container and every part's size, no DTD, readable shared
    strings and header rows. ValidationFailed ("文件无法读取…") otherwise; the rows themselves
    are checked by the job."""
    suffix = Path(filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise ValidationFailed([RowProblem(f"不支持的文件类型“{suffix[:10] or filename[:40]}”，请上传 .xlsx 或 .csv 文件",
                                           path="file")])
    sheets = list(open_sheets(data, suffix, IntakeLimits.from_env()))
    if not any(sheet.header() for sheet in sheets):     # nothing to read: said now, not by a job
        raise ValidationFailed([RowProblem("文件是空的（没有表头），请用导入模板填写后上传", path="file")])


def stash_upload(data: bytes, filename: str) -> str:
    """Keep an uploaded file for its import job (private, under the data directory)."""
    path = private_dir("uploads") / f"{secrets.token_hex(8)}{Path(filename).suffix.lower()[:6]}"
    write_private(path, data)
    return str(path)


@jobs.task("applications.import", "批量导入")
def import_file(db: Database, ctx: jobs.JobContext, args: dict) -> dict:
    path = Path(args["path"])
    try:
        rep = import_applications(db, args.get("window_id"), path.read_bytes(), args["filename"],
                                  skip_invalid=args.get("skip_invalid", False), actor=args.get("actor"))
    except ImportRejected as e:
        rep = e.report
    ctx.progress(rep.rows, rep.rows, f"已读取 {rep.rows} 行")    # read in one pass: done is all of it
    result = rep.to_dict()
    codes = result.pop("access_codes")
    if codes:
        ctx.add_file("查询码.csv", "text/csv", csv_bytes(
            "新受理申报的查询码（请妥善保管、安全转交企业；每次下载都记录经办人和时间）", ["统一社会信用代码", "企业名称", "申报编号", "查询码"],
            [[c["uscc"], c["name"], c["application_id"], c["access_code"]] for c in codes]))
    path.unlink(missing_ok=True)
    return result
