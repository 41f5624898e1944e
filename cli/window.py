"""`yagu window …`: the semiannual window from the command line (open, import, judge, 一次告知,
公示, close, exports, replay, impact) and `yagu db upgrade`, `yagu jobs …`, `yagu worker`.

Long work runs as a background job (store.jobs); the command follows it with a progress bar
and runs it itself unless a worker takes it (PostgreSQL with `yagu worker`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import DATE, db_handle, fail, money, run
from engine.profile import shanghai_today
from engine.vocabulary import APPLICATION_STATE, STATUS, cn_date, cn_time, ruleset_text
from store import applications, awards, exports, jobs, replay
from store import windows as W
from store.intake import template_bytes
from store.paths import private_dir, write_private
from store.rulesets import current
from store.tasks import evaluation_summary, impact_lines, stash_upload
import notices.service  # also registers the notices.bundle job kind (run here by `follow`)


def register(main: click.Group) -> None:
    main.add_command(window)
    main.add_command(db_group)
    main.add_command(jobs_group)
    main.add_command(worker)


def follow(db, job_id: str, source: str | None = None) -> jobs.JobView:
    """Run the job here if no worker has taken it, showing its progress; its final state.
    `source`: the file the job reads, named in its failure."""
    with click.progressbar(length=1, label="进行中", file=sys.stderr, show_eta=False) as bar:
        def show(v: jobs.JobView) -> None:
            bar.length = max(v.total, 1)
            bar.update(v.done - bar.pos)
            bar.label = v.message or v.state_text
        run(jobs.run_pending, db)
        v = run(jobs.wait, db, job_id, on_progress=show, poll=0.5)
    if v.state == "failed":
        fail(f"任务失败：{source + '：' if source else ''}{v.error}")
    if v.state == "cancelled":
        fail("任务已取消")
    return v


def submit_and_follow(db, kind: str, args: dict, lock: str, actor: str, wait: bool,
                      source: str | None = None) -> jobs.JobView | None:
    job_id = run(jobs.submit, db, kind, {**args, "actor": actor}, actor=actor, lock_key=lock)
    if not wait:
        click.echo(f"已提交后台任务 {job_id}；查看进度：yagu jobs show {job_id}")
        return None
    return follow(db, job_id, source)


ACTOR = "命令行"


@click.group("window", help="一年两次集中申报：开设批次、导入、判定、一次告知、公示、关闭兑现、导出、重放核验、影响分析")
def window() -> None:
    pass


@window.command("open", help="开设申报批次，例如：yagu window open 2026-H1（有默认日历的编号可省略日期）")
@click.argument("window_id", metavar="批次编号")
@click.option("--opens", "opens_on", help="受理开始日期 YYYY-MM-DD")
@click.option("--closes", "closes_on", help="受理截止日期 YYYY-MM-DD")
@click.option("--as-of", "as_of", help="判定日期（默认受理截止日期）")
@click.option("--coverage-from", help="覆盖期开始（注册证取得日期的起点）")
@click.option("--coverage-to", help="覆盖期结束")
@click.option("--label", help="批次名称")
@click.option("--correction-workdays", type=int, help="补正期限（工作日，默认见 rules/workdays/service-limits.yaml）")
@click.option("--publicity-workdays", type=int, help="公示期（工作日）")
@click.option("--amounts", help="本批次通知确定的参数，JSON，例如 '{\"grant_amounts\": {...}}'")
def window_open(window_id, opens_on, closes_on, as_of, coverage_from, coverage_to, label, correction_workdays,
                publicity_workdays, amounts):
    import json
    try:
        parsed = json.loads(amounts) if amounts else None
    except json.JSONDecodeError as e:
        fail(f"--amounts 不是有效的 JSON：第 {e.lineno} 行第 {e.colno} 列")
    db = db_handle()
    w = run(W.open_window, db, window_id, opens_on=opens_on, closes_on=closes_on, as_of=as_of,
            coverage_from=coverage_from, coverage_to=coverage_to, label=label, amounts=parsed,
            correction_workdays=correction_workdays, publicity_workdays=publicity_workdays, actor=ACTOR)
    click.echo(f"已开设 {w.id}（{w.label}）：受理 {cn_date(w.opens_on)}至{cn_date(w.closes_on)}，"
               f"判定日期 {cn_date(w.as_of)}，覆盖 {cn_date(w.coverage_from)}至{cn_date(w.coverage_to)}")
    opened = run(W.get_window, db, w.id)
    db.dispose()
    if opened.calendar_gap:
        click.echo(f"注意：{opened.calendar_gap}", err=True)
    overlaps = opened.overlaps
    if overlaps:
        click.echo(f"注意：覆盖期与{'、'.join(overlaps)}重叠，同一张注册证会在两个批次都被判定和公示"
                   "（兑现台账保证只兑现一次）；请核对覆盖期", err=True)


@window.command("amounts", help="公示前为批次设定当期申报通知确定的金额（替代规则中的参考金额；金额表的写法与开设批次的 --amounts 相同），之后须重新批量判定")
@click.argument("window_id", metavar="批次编号")
@click.argument("amounts", metavar="金额表")
def window_amounts(window_id, amounts):
    import json
    try:
        parsed = json.loads(amounts)
    except json.JSONDecodeError as e:
        fail(f"金额不是有效的 JSON：第 {e.lineno} 行第 {e.colno} 列")
    w = run(W.set_amounts, db_handle(), window_id, parsed, actor=ACTOR)
    click.echo(f"已为 {w.id}（{w.label}）设定金额；请重新批量判定（yagu window evaluate {w.id}）后再公示")


@window.command("delete", help="删除开设有误的申报批次（仅限尚无任何申报、判定和告知书的批次）")
@click.argument("window_id", metavar="批次编号")
@click.option("--yes", is_flag=True, help="不再确认")
def window_delete(window_id, yes):
    db = db_handle()
    w = run(W.get_window, db, window_id)
    if not yes and not click.confirm(f"删除“{w.label}”？", default=False):
        fail("已取消")
    run(W.delete_window, db, window_id, actor=ACTOR)
    click.echo(f"已删除申报批次 {window_id}（{w.label}）")


@window.command("list", help="列出申报批次")
def window_list():
    today = shanghai_today()
    ws = run(W.list_windows, db_handle())
    if not ws:
        click.echo("还没有申报批次（开设：yagu window open 批次编号）")
    for w in ws:
        c = w.counts
        decided = "，".join(f"{STATUS[s]} {n}" for s, n in c.grant_decisions.items()) or "未判定"
        click.echo(f"{w.id:10} {w.stage_text(today)} {w.label}  受理 {cn_date(w.opens_on)}至{cn_date(w.closes_on)}  "
                   f"申报 {c.applications} 份  资金支持：{decided}  已兑现 {c.awards} 项 {money(c.awards_total_cny)}")


@window.command("template", help="生成导入模板（中文列名，示例在“填写示例”工作表，不会被导入）")
@click.argument("out", type=click.Path(dir_okay=False, writable=True), metavar="输出文件")
def window_template(out):
    fmt = "csv" if out.lower().endswith(".csv") else "xlsx"
    Path(out).write_bytes(template_bytes(current().registry, fmt))
    click.echo(f"已生成导入模板：{out}")


def _import(window_id: str | None, path: str, skip_invalid: bool, wait: bool, codes_out: str | None) -> None:
    db = db_handle()
    stashed = stash_upload(Path(path).read_bytes(), Path(path).name)
    v = submit_and_follow(db, "applications.import", {"window_id": window_id, "path": stashed,
                                                      "filename": Path(path).name, "skip_invalid": skip_invalid},
                          f"import:{window_id or 'registry'}", ACTOR, wait, source=path)
    if v is None:
        return
    rep = v.result or {}
    for p in rep.get("problems", []):
        where = "".join([f"工作表“{p['sheet']}”" if p.get("sheet") else "", f"第{p['row']}行" if p.get("row") else "",
                         f"，列“{p['column']}”" if p.get("column") else ""])
        click.echo(f"{path}：{where + '：' if where else ''}{p['message']}", err=True)
    if not rep.get("committed"):
        fail(f"文件有 {len(rep.get('problems', []))} 处问题，未导入任何数据（--skip-invalid 跳过有错误的企业）"
             if rep.get("problems") else "文件中没有可导入的企业")
    click.echo(f"导入 {rep['rows']} 行、{rep['enterprises']} 家企业：新受理 {rep['created']}，更新 {rep['updated']}，"
               f"未变 {rep['unchanged']}，跳过 {len(rep['skipped'])}")
    if "查询码.csv" in v.files:
        media, data = jobs.file(db, v.id, "查询码.csv", actor="命令行")
        target = Path(codes_out) if codes_out else private_dir("access-codes") / f"{window_id}-{v.id}.csv"
        write_private(target, data)
        click.echo(f"新申报的查询码已写入 {target}（只有本用户可读；请安全转交企业，转交后删除该文件）")


@window.command("import", help="导入申报（.xlsx 或 .csv）；有错误时不导入任何数据，逐行列出问题")
@click.argument("window_id", metavar="批次编号")
@click.argument("path", type=click.Path(exists=True, dir_okay=False), metavar="文件")
@click.option("--skip-invalid", is_flag=True, help="跳过有错误的企业，导入其余")
@click.option("--codes-out", type=click.Path(dir_okay=False), help="查询码文件（默认写在数据目录，权限 0600）")
@click.option("--no-wait", is_flag=True, help="提交后台任务后立即返回")
def window_import(window_id, path, skip_invalid, codes_out, no_wait):
    _import(window_id, path, skip_invalid, not no_wait, codes_out)


@window.command("registry", help="导入企业名录（未申报的已知企业，用于免申即享）")
@click.argument("path", type=click.Path(exists=True, dir_okay=False), metavar="文件")
@click.option("--skip-invalid", is_flag=True, help="跳过有错误的企业")
@click.option("--no-wait", is_flag=True, help="提交后台任务后立即返回")
def window_registry(path, skip_invalid, no_wait):
    _import(None, path, skip_invalid, not no_wait, None)


@window.command("evaluate", help="批量判定（后台任务，可中断续跑；同一批次同时只运行一个）")
@click.argument("window_id", metavar="批次编号")
@click.option("--no-wait", is_flag=True, help="提交后台任务后立即返回")
def window_evaluate(window_id, no_wait):
    db = db_handle()
    run(W.get_window, db, window_id)
    v = submit_and_follow(db, "window.evaluate", {"window_id": window_id}, f"window:{window_id}", ACTOR, not no_wait)
    if v:
        r = v.result
        click.echo(f"{evaluation_summary(r)}；规则版本 {ruleset_text(r['ruleset_version'])}")


@window.command("notices", help="发出一次性告知书：资金支持事项未全部符合条件的申报，起算补正期限")
@click.argument("window_id", metavar="批次编号")
def window_notices(window_id):
    db = db_handle()
    n = run(notices.service.NoticeService(db).issue_one_time_notices, db, window_id, actor=ACTOR)
    click.echo(f"已发出 {n} 份一次性告知书")


@window.command("applications", help="列出申报（可按状态筛选）")
@click.argument("window_id", metavar="批次编号")
@click.option("--state", help="办理状态：" + "、".join(APPLICATION_STATE.values()) + "（也可写代码，例如 correction）")
@click.option("--search", "q", help="企业名称、信用代码或申报编号")
def window_applications(window_id, state, q):
    if state:
        by_word = {v: k for k, v in APPLICATION_STATE.items()}
        if state not in APPLICATION_STATE and state not in by_word:
            fail(f"没有“{state}”这个办理状态；可选：{'、'.join(APPLICATION_STATE.values())}")
        state = by_word.get(state, state)
    db, offset, total = db_handle(), 0, None
    while total is None or offset < total:      # every one, a page at a time
        total, rows = run(applications.list_applications, db, window_id, state=state, q=q, limit=500, offset=offset)
        for r in rows:
            decided = "，".join(f"{STATUS[s]} {n}" for s, n in r.grant_statuses.items()) or "—"
            changed = "；复核改为" + "，".join(f"{STATUS[s]} {n}" for s, n in r.review_changes.items()) \
                if r.review_changes else ""
            click.echo(f"{r.application_id}  {r.enterprise_name}  {r.state_text}  资金支持：{decided}{changed}")
        offset += 500
        if not rows:
            break
    click.echo(f"共 {total} 份")


@window.command("proactive", help="免申即享：未申报但符合资金支持条件的已知企业")
@click.argument("window_id", metavar="批次编号")
def window_proactive(window_id):
    out = run(awards.proactive, db_handle(), window_id)
    for e in out:
        items = "；".join(f"{b['title']}{'（' + b['subject_id'] + '）' if b['subject_id'] else ''} {money(b['amount_cny'])}"
                         for b in e["benefits"])
        click.echo(f"{e['uscc']} {e['name']}：{items}")
    click.echo(f"共 {len(out)} 家")


@window.command("publish", help="公示拟支持名单（受理期结束、全部申报按现行规则判定后）")
@click.argument("window_id", metavar="批次编号")
def window_publish(window_id):
    w = run(awards.publish, db_handle(), window_id, actor=ACTOR)
    click.echo(f"已公示：公示期 {cn_date(w.publicity_from)}至{cn_date(w.publicity_until)}")


@window.command("close", help="关闭批次并兑现（不可撤销）：写入兑现台账，出具不予支持告知书")
@click.argument("window_id", metavar="批次编号")
@click.option("--reason", help="公示期未满时提前关闭的理由")
@click.option("--yes", is_flag=True, help="不再确认")
def window_close(window_id, reason, yes):
    db = db_handle()
    p = run(awards.close_preview, db, window_id)
    if p["blocked"]:
        fail("现在不能关闭：" + "；".join(p["blocked"]))
    click.echo(f"将兑现 {p['awards']} 项，合计 {money(p['amount_cny'])}；出具不予支持告知书 {p['non_support_notices']} 份"
               + (f"；{p['already_awarded']} 项已在其他批次兑现" if p["already_awarded"] else ""))
    if p["provisional_awards"]:
        click.echo(f"其中 {p['provisional_awards']} 项、合计 {money(p['provisional_amount_cny'])} 是参考金额（没有正式文件确认，"
                   "批次也未设定当期申报通知的金额），兑现通知书将注明“参考金额，以当期申报通知为准”；"
                   "请先核对当期申报通知的金额")
    if p["unreviewed_refusals"]:
        click.echo(f"其中 {p['unreviewed_refusals']} 份不予支持的申报没有复核记录（可在管理控制台筛选“未复核”查看）")
    if p["unsupplied_commitments"]:
        click.echo(f"有 {len(p['unsupplied_commitments'])} 项容缺承诺的材料尚未补交（关闭后企业仍可在承诺期限内补交）")
    if p["pending_materials"]:
        apps = p["pending_material_applications"]
        listed = "；".join(f"{a['application_id']} {a['enterprise_name']}：{'、'.join(a['materials'])}" for a in apps[:5])
        click.echo(f"还有 {p['pending_materials']} 份已上传的材料尚未审核（{listed}"
                   + (f"；等 {len(apps)} 份申报" if len(apps) > 5 else "") + "），关闭后不能再审核")
    if p["early"] and not reason:
        fail("公示期未满或尚未公示：提前关闭须用 --reason 写明理由")
    if not yes and not click.confirm("确认关闭？此操作不可撤销", default=False):
        fail("已取消")
    res = run(awards.close_window, db, window_id, actor=ACTOR, reason=reason)
    click.echo(f"已关闭：兑现 {res.totals.count} 项，合计 {money(res.totals.amount_cny)}；应出具不予支持告知书 {res.non_support_notices} 份，第一次查看或打包时编号")


@window.command("export", help="导出拟支持（兑现）名单或判定结论（.xlsx / .csv）")
@click.argument("window_id", metavar="批次编号")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True, help="格式")
@click.option("--what", type=click.Choice(["awards", "decisions"]), default="awards", show_default=True,
              help="awards 名单；decisions 资金支持判定结论")
@click.option("--out", type=click.Path(dir_okay=False), help="输出文件（默认 <批次>-<类型>.<格式>）")
def window_export(window_id, fmt, what, out):
    fn = exports.export_awards if what == "awards" else exports.export_decisions
    data = run(fn, db_handle(), window_id, fmt)
    target = Path(out or f"{window_id}-{'拟支持名单' if what == 'awards' else '判定结论'}.{fmt}")
    target.write_bytes(data)
    click.echo(f"已导出 {target}")


@window.command("replay", help="重放核验：按存档的规则版本和画像重新判定全部判定，报告任何差异")
@click.argument("window_id", metavar="批次编号")
def window_replay(window_id):
    db = db_handle()
    v = submit_and_follow(db, "window.replay", {"window_id": window_id}, f"replay:{window_id}", ACTOR, True)
    r = v.result
    click.echo(f"重放 {r['evaluations']} 家企业的 {r['decisions']} 项判定：{r['identical']} 项完全一致，"
               f"{r['differences']} 项不同，{r['not_archived']} 家规则未存档；{r['rate_per_second']} 家/秒")
    for d in r["sample"]:
        click.echo(f"  不同：{d['enterprise_name']} {d['benefit_id']} {d['subject_id']} 原 {STATUS.get(d['before'], d['before'])}"
                   f" → 现 {STATUS.get(d['after'], d['after'])}", err=True)
    if r["differences"]:
        sys.exit(1)


@window.command("impact", help="规则变化影响：用另一套规则（或日期）判定本批次申报，列出会改变的判定")
@click.argument("window_id", metavar="批次编号")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False), help="另一套规则目录")
@click.option("--as-of", "as_of", type=DATE, help="另一个判定日期")
@click.option("--out", type=click.Path(dir_okay=False), help="把结果写入 Excel 文件")
def window_impact(window_id, rules_dir, as_of, out):
    if not rules_dir and not as_of:
        fail("请用 --rules 指定另一套规则目录，或用 --as-of 指定另一个判定日期（否则是现行规则与自己比较）")
    if out and Path(out).suffix.lower() != ".xlsx":       # the file is a workbook: named so
        fail(f"--out 写出的是 Excel 表格，文件名须以 .xlsx 结尾：{out}")
    if out and not Path(out).resolve().parent.is_dir():   # said before the analysis, not after it
        fail(f"--out 的目录不存在：{Path(out).resolve().parent}")
    if rules_dir:               # every problem of the other rules now, with file and line, not in a job
        run(replay.other_rules, rules_dir)
    db = db_handle()
    v = submit_and_follow(db, "window.impact", {"window_id": window_id, "rules_dir": rules_dir,
                                                "as_of": as_of.isoformat() if as_of else None},
                          f"impact:{window_id}", ACTOR, True)
    r = v.result
    for line in impact_lines(r):
        click.echo(line)
    for row in r["rows"]:
        click.echo("  " + "  ".join(f"{k}：{v}" for k, v in row.items() if v not in (None, "")))
    if r["changes"] > len(r["rows"]):
        click.echo(f"（以上列出前 {len(r['rows'])} 项；全部 {r['changes']} 项见 --out 写出的表格）")
    if out:
        media, data = jobs.file(db, v.id, v.files[0])
        try:
            Path(out).write_bytes(data)
        except OSError as e:
            fail(f"无法写入 {out}（{e.strerror or e}）；结果仍可在控制台的任务页下载")
        click.echo(f"已写入 {out}")


@click.group("db", help="数据库")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="把数据库结构升级到当前版本（Alembic 迁移，含旧判定的转换）")
def db_upgrade():
    db_handle()
    click.echo("数据库已是最新结构")


@click.group("jobs", help="后台任务：查看、等待、取消")
def jobs_group() -> None:
    pass


@jobs_group.command("list", help="最近的后台任务")
def jobs_list():
    for j in run(jobs.list_jobs, db_handle(), limit=30):
        said = f"  {j.message}" if j.message and j.message != j.state_text else ""
        about = f"（{j.about}）" if j.about else ""
        click.echo(f"{j.id}  {j.kind_text}{about}  {j.state_text}  {j.done}/{j.total}  {cn_time(j.created_at)}{said}")


@jobs_group.command("show", help="一个任务的进度和结果")
@click.argument("job_id", metavar="任务编号")
def jobs_show(job_id):
    j = run(jobs.get, db_handle(), job_id)
    said = f" {j.message}" if j.message and j.message != j.state_text else ""
    about = f"（{j.about}）" if j.about else ""
    click.echo(f"{j.kind_text}{about}：{j.state_text} {j.done}/{j.total}{said}")
    if j.error:
        click.echo(j.error, err=True)
    for f in j.files:
        click.echo(f"文件：{f}")


@jobs_group.command("wait", help="等待任务结束（在本进程中运行排队的任务）")
@click.argument("job_id", metavar="任务编号")
def jobs_wait(job_id):
    j = follow(db_handle(), job_id)
    click.echo(f"{j.kind_text}：{j.state_text}")


@jobs_group.command("cancel", help="取消排队中或进行中的任务")
@click.argument("job_id", metavar="任务编号")
def jobs_cancel(job_id):
    run(jobs.cancel, db_handle(), job_id)
    click.echo("已请求取消")


@click.command("worker", help="后台任务进程（PostgreSQL）：从队列取任务执行，可在多台机器上运行多个")
@click.option("--concurrency", type=click.IntRange(1, 16), default=1, show_default=True, help="同时执行的任务数")
@click.option("--burst", is_flag=True, help="执行完队列中的任务后退出")
def worker(concurrency, burst):
    db = db_handle()
    if not db.is_postgres:
        fail("SQLite 数据库的后台任务在 yagu serve 或命令行进程中运行，不需要单独的 worker")
    click.echo(f"后台任务进程已启动（并发 {concurrency}）", err=True)
    jobs.worker_main(db, concurrency, burst)
