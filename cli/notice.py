"""`yagu notice …`: notices of stored applications, a window's bundle, and working-day arithmetic."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from cli.common import db_handle, fail, run
from cli.window import submit_and_follow
from engine.vocabulary import cn_date
from engine.workdays import WorkdayError, add_workdays, default_calendar, due_date, service_limits, workdays_between
from notices.render import NoticeRenderer
from notices.service import NoticeService
from store import jobs
from store.notices import KINDS

KIND_CHOICE = click.Choice([k for k, v in KINDS.items() if v.char])


def _date(ctx, param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"应为 YYYY-MM-DD 格式的日期，不能是“{value[:20]}”") from None


def register(main: click.Group) -> None:
    @main.group("notice", help="告知书：一次性告知书、兑现通知书、不予支持告知书、税收优惠自行判别结果；工作日计算")
    def notice():
        pass

    @notice.command("render", help="生成一份申报的一种告知书（正式文书取得编号；重新生成沿用原编号和日期）")
    @click.argument("application_id", metavar="申报编号")
    @click.option("--kind", type=KIND_CHOICE, required=True, help="文书种类")
    @click.option("--pdf", "as_pdf", is_flag=True, help="输出 PDF（默认 HTML）")
    @click.option("--out", type=click.Path(path_type=Path), help="输出文件或目录（默认当前目录，按企业和文书命名）")
    @click.option("--templates", type=click.Path(path_type=Path), help="自定义模板目录（覆盖 YAGU_NOTICE_TEMPLATES）")
    @click.option("--issued-on", callback=_date, help="出具日期（默认今天，北京时间）")
    def render(application_id, kind, as_pdf, out, templates, issued_on):
        svc = NoticeService(db_handle(), renderer=NoticeRenderer(templates))
        doc = run(svc.render, application_id, kind, "pdf" if as_pdf else "html", issued_on)
        path = out / doc.filename if out and out.is_dir() else (out or Path(doc.filename))
        path.write_bytes(doc.data)
        click.echo(f"{doc.number}  {path}")

    @notice.command("bundle", help="生成一个申报批次的全部告知书（PDF，打包为 zip；后台任务，显示进度）")
    @click.argument("window_id", metavar="批次编号")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="zip 文件（默认 告知书-<批次>.zip）")
    @click.option("--html", is_flag=True, help="同时附上 HTML")
    def bundle(window_id, out, html):
        db = db_handle()
        v = submit_and_follow(db, "notices.bundle", {"window_id": window_id, "html": html}, f"notices:{window_id}",
                              "命令行", True)
        media, data = jobs.file(db, v.id, v.files[0])
        target = out or Path(v.files[0])
        target.write_bytes(data)
        click.echo(f"已生成 {v.result['notices']} 份告知书：{target}")

    @notice.group("workdays", help="工作日计算（法定节假日不计，调休上班日计入，起算日不计入）")
    def workdays():
        pass

    def _wd(fn, *args):
        try:
            return fn(*args)
        except WorkdayError as exc:
            fail(str(exc))

    @workdays.command("add", help="START 之后第 N 个工作日")
    @click.argument("start", callback=_date, metavar="起始日期")
    @click.argument("n", type=click.IntRange(min=0), metavar="工作日数")
    def wd_add(start, n):
        click.echo(cn_date(_wd(add_workdays, start, n)))

    @workdays.command("between", help="A（不计）到 B（计）之间的工作日数")
    @click.argument("a", callback=_date, metavar="开始日期")
    @click.argument("b", callback=_date, metavar="结束日期")
    def wd_between(a, b):
        click.echo(str(_wd(workdays_between, a, b)))

    @workdays.command("due", help="办理时限到期日；LIMIT 见 rules/workdays/service-limits.yaml")
    @click.argument("start", callback=_date, metavar="起始日期")
    @click.argument("limit", metavar="期限")
    def wd_due(start, limit):
        d = _wd(due_date, start, limit)
        lim = service_limits()[limit]
        click.echo(f"{cn_date(d)}  {lim.name}（{lim.workdays}个工作日；{lim.source}）")

    @workdays.command("check", help="列出某年的放假日、调休上班日和工作日总数，供与通知原文核对")
    @click.argument("year", type=int, metavar="年份")
    def wd_check(year):
        sched = _wd(default_calendar().schedule, year)
        src = "chinesecalendar 程序库" if sched.source == "chinese_calendar" else sched.source[5:]
        click.echo(f"{year} 年，数据来源：{src}")
        for d in sorted(sched.holidays):
            click.echo(f"  放假  {cn_date(d)} 周{'一二三四五六日'[d.weekday()]}  {sched.names.get(d, '')}")
        for d in sorted(sched.makeup_workdays):
            click.echo(f"  上班  {cn_date(d)} 周{'一二三四五六日'[d.weekday()]}")
        days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        n = sum(sched.is_workday(dt.date(year, 1, 1) + dt.timedelta(days=i)) for i in range(days))
        click.echo(f"全年工作日 {n} 天")
