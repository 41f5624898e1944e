"""`yagu window ...` (semiannual application windows) and `yagu db ...` (schema, tokens)."""
from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path

import click


def _db():
    from store.db import Database

    db = Database()
    db.upgrade()  # idempotent; a fresh working directory gets its schema on first use
    return db


def _fail(exc: Exception) -> None:
    from store.errors import StoreError

    msg = exc.message if isinstance(exc, StoreError) else str(exc)
    click.secho(f"错误：{msg}", fg="red", err=True)
    sys.exit(1)


def _run(fn, *a, **kw):
    from store.errors import StoreError

    try:
        return fn(*a, **kw)
    except StoreError as e:
        _fail(e)
    except ValueError as e:
        _fail(e)


def _money(v) -> str:
    return "—" if v is None else f"{v:,.2f}"


def register(main: click.Group) -> None:
    main.add_command(window)
    main.add_command(db_group)


@click.group("window", help="一年两次集中申报窗口：开设、导入、评估、免申即享、关闭、导出")
def window() -> None:
    pass


@window.command("open", help="开设申报窗口，例如：yagu window open 2026-H1 --opens 2026-03-01 --closes 2026-03-31")
@click.argument("window_id")
@click.option("--opens", "opens_on", help="受理开始日期 YYYY-MM-DD（2026-H1 等编号可省略，取 rules/windows.yaml）")
@click.option("--closes", "closes_on", help="受理截止日期 YYYY-MM-DD")
@click.option("--as-of", "as_of", help="评估基准日（默认为截止日期）")
@click.option("--coverage-from", help="覆盖期开始（证书取得日期的起点）")
@click.option("--coverage-to", help="覆盖期结束")
@click.option("--label", help="窗口名称")
@click.option("--amounts", type=click.Path(exists=True, dir_okay=False), help="本批次参数 JSON 文件 {参数名: 取值}，如 {\"grant_amounts\": {...}}，覆盖规则中的参考值")
def window_open(window_id, opens_on, closes_on, as_of, coverage_from, coverage_to, label, amounts):
    from store.windows import open_window

    amt = None
    if amounts:
        try:
            amt = json.loads(Path(amounts).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            _fail(ValueError(f"{amounts}：不是有效的 JSON（{e}）"))
    w = _run(open_window, _db(), window_id, opens_on=opens_on, closes_on=closes_on, as_of=as_of,
             coverage_from=coverage_from, coverage_to=coverage_to, amounts=amt, label=label)
    click.echo(f"已开设申报窗口 {w['id']}（{w['label']}）")
    click.echo(f"  受理期：{w['opens_on']} 至 {w['closes_on']}；评估基准日：{w['as_of']}")
    click.echo(f"  覆盖期：{w['coverage_from'] or '—'} 至 {w['coverage_to'] or '—'}")
    if w["amounts"]:
        click.echo(f"  金额覆盖：{json.dumps(w['amounts'], ensure_ascii=False)}")


@window.command("list", help="列出申报窗口")
def window_list():
    from store.windows import STATE_NAMES, list_windows

    ws = _run(list_windows, _db())
    if not ws:
        click.echo("尚无申报窗口。用 yagu window open 开设。")
        return
    for w in ws:
        d = w["decisions"]
        click.echo(f"{w['id']}  {w['label']}  {w['opens_on']}～{w['closes_on']}  "
                   f"{STATE_NAMES.get(w['state'], w['state'])}  申报 {w['applications']} 家  "
                   f"符合 {d.get('eligible', 0)} 项  兑现 {w['awards']} 项 {_money(w['awards_total_cny'])} 元")


@window.command("template", help="生成导入模板（.xlsx 或 .csv，按文件扩展名）")
@click.argument("out", type=click.Path(dir_okay=False))
def window_template(out):
    from store.intake import SHEET_EXAMPLE, template_bytes
    from store.windows import get_evaluator

    fmt = "csv" if out.lower().endswith(".csv") else "xlsx"
    Path(out).write_bytes(template_bytes(get_evaluator().registry, fmt))
    click.echo(f"已生成导入模板：{out}")
    if fmt == "csv":
        click.echo(f"CSV 模板只有表头；填写示例见 .xlsx 模板的“{SHEET_EXAMPLE}”工作表")


def _print_report(rep) -> None:
    click.echo(f"文件：{rep.filename}，数据行 {rep.rows} 行，企业 {rep.enterprises} 家")
    if rep.problems:
        click.secho(f"发现 {len(rep.problems)} 处问题：", fg="yellow", err=True)
        for p in rep.problems:
            click.echo(f"  - {p}", err=True)


def _write_codes(rep, path: str) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["统一社会信用代码", "企业名称", "申报编号", "查询码"])
        for c in rep.access_codes:
            w.writerow([c["uscc"], c["name"], c["application_id"], c["access_code"]])


@window.command("import", help="导入申报（.xlsx 或 .csv）；有错误时默认不导入任何数据")
@click.argument("window_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="导入无误的企业，跳过有错误的企业并报告")
@click.option("--codes-out", type=click.Path(dir_okay=False),
              help="新申报的查询码写入此 CSV（默认 access-codes-<窗口>-<时间>.csv）；查询码只显示这一次")
def window_import(window_id, path, skip_invalid, codes_out):
    from store.intake import ImportRejected, import_applications

    try:
        rep = import_applications(_db(), window_id, path, skip_invalid=skip_invalid)
    except ImportRejected as e:
        _print_report(e.report)
        click.secho("文件有错误，未导入任何数据。请修正后重新导入，或使用 --skip-invalid 只导入无误的企业。",
                    fg="red", err=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - domain errors get a Chinese message
        from store.errors import StoreError

        if isinstance(e, (StoreError, ValueError)):
            _fail(e)
        raise
    _print_report(rep)
    click.echo(f"导入完成：新增 {rep.created} 家，更新 {rep.updated} 家，未变化 {rep.unchanged} 家"
               + (f"，跳过 {len(rep.skipped)} 家" if rep.skipped else ""))
    if rep.access_codes:
        out = codes_out or f"access-codes-{window_id}-{datetime.now():%Y%m%d%H%M%S}.csv"
        _write_codes(rep, out)
        click.echo(f"{len(rep.access_codes)} 个新申报的查询码已写入 {out}（只显示这一次，请妥善保管并告知企业）")
    if rep.problems:
        sys.exit(2)  # partial import: visible to scripts


@window.command("registry", help="导入园区企业名录（不申报，用于免申即享主动评估），格式同导入模板")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True)
def window_registry(path, skip_invalid):
    from store.intake import ImportRejected, import_registry

    try:
        rep = import_registry(_db(), path, skip_invalid=skip_invalid)
    except ImportRejected as e:
        _print_report(e.report)
        click.secho("文件有错误，未导入任何数据。", fg="red", err=True)
        sys.exit(1)
    _print_report(rep)
    click.echo(f"企业名录导入完成：{rep.imported} 家")


@window.command("evaluate", help="评估窗口内全部申报及园区已知企业；可中断后重跑，结果不变")
@click.argument("window_id")
@click.option("--batch-size", default=500, show_default=True, help="每批评估的企业数")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="评估进程数（默认取环境变量 YAGU_EVAL_WORKERS，否则为 CPU 核数；企业较少时在本进程内评估）")
def window_evaluate(window_id, batch_size, workers):
    from store.windows import STATUS_NAMES, evaluate_window

    db = _db()
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label="评估中", show_pos=True,
                                    file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        res = _run(evaluate_window, db, window_id, progress=progress, batch_size=batch_size,
                   workers=workers)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"评估完成：本次评估 {res.evaluated} 家，{res.skipped} 家结果已是最新（规则版本 {res.ruleset_version[:12]}）")
    click.echo("申报企业结论：" + "，".join(f"{STATUS_NAMES[k]} {v} 项" for k, v in res.counts.items()))
    click.echo("未申报企业（免申即享）结论：" + "，".join(f"{STATUS_NAMES[k]} {v} 项" for k, v in res.proactive_counts.items()))


@window.command("decisions", help="列出评估结论")
@click.argument("window_id")
@click.option("--status", type=click.Choice(["eligible", "ineligible", "needs_info", "not_in_force"]))
@click.option("--uscc")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON（含完整判定依据）")
def window_decisions(window_id, status, uscc, as_json):
    from store.windows import STATUS_NAMES, list_decisions

    rows = _run(list_decisions, _db(), window_id, status=status, uscc=uscc, with_trace=as_json)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for d in rows:
        subj = d["subject"]["id"] if d["subject"] else ""
        click.echo(f"{d['uscc']}  {d['enterprise_name']}  {d['benefit_id']}  {subj}  "
                   f"{STATUS_NAMES.get(d['status'], d['status'])}  {_money(d['amount_cny'])}"
                   + ("（参考金额）" if d["amount_provisional"] and d["amount_cny"] is not None else ""))
    click.echo(f"共 {len(rows)} 项")


@window.command("proactive", help="免申即享：未申报但符合条件的园区企业")
@click.argument("window_id")
@click.option("--json", "as_json", is_flag=True)
def window_proactive(window_id, as_json):
    from store.windows import proactive

    rows = _run(proactive, _db(), window_id)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("没有未申报但符合条件的企业。")
        return
    for e in rows:
        click.echo(f"{e['uscc']}  {e['name']}  可享 {len(e['benefits'])} 项，金额合计 {_money(e['total_amount_cny'])} 元"
                   + ("（含参考金额）" if e["amount_provisional"] else ""))
        for b in e["benefits"]:
            subj = f"（{b['subject']['id']}）" if b["subject"] else ""
            click.echo(f"    - {b['title'] or b['benefit_id']}{subj}  {_money(b['amount_cny'])}")
    click.echo(f"共 {len(rows)} 家")


@window.command("close", help="关闭窗口：兑现名单写入台账（同一证书/主体只兑现一次）")
@click.argument("window_id")
@click.option("--json", "as_json", is_flag=True)
def window_close(window_id, as_json):
    from store.windows import close_window

    res = _run(close_window, _db(), window_id)
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False, indent=2, default=str))
        return
    t = res.totals
    click.echo(f"申报窗口 {window_id} 已关闭：兑现 {t['count']} 项，金额合计 {_money(t['amount_cny'])} 元"
               + (f"（其中 {t['provisional_count']} 项为参考金额）" if t["provisional_count"] else ""))
    for a in res.awards:
        click.echo(f"  {a['uscc']}  {a['enterprise_name']}  {a['benefit_id']}  {a['subject_id']}  {_money(a['amount_cny'])}")
    if res.already_awarded:
        click.secho(f"{len(res.already_awarded)} 项已兑现过，本次不再兑现：", fg="yellow")
        for a in res.already_awarded:
            click.echo(f"  {a['uscc']}  {a['subject_id']}：{a['reason']}")


@window.command("export", help="导出兑现名单（或 --what decisions 导出评估结论）")
@click.argument("window_id")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("--what", type=click.Choice(["awards", "decisions"]), default="awards", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="输出文件（默认 <窗口>-awards.<格式>）")
def window_export(window_id, fmt, what, out):
    from store.exports import export_awards, export_decisions

    fn = export_awards if what == "awards" else export_decisions
    data = _run(fn, _db(), window_id, fmt)
    out = out or f"{window_id}-{what}.{fmt}"
    Path(out).write_bytes(data)
    click.echo(f"已导出：{out}")


# --- yagu db ------------------------------------------------------------------------


@click.group("db", help="数据库结构迁移（访问令牌见 yagu token）")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="把数据库结构升级到最新版本（YAGU_DATABASE_URL，默认 ./yagu.db）")
def db_upgrade():
    from store.db import Database

    db = Database()
    db.upgrade()
    click.echo(f"数据库已是最新结构：{db.engine.url.render_as_string(hide_password=True)}")
