"""`yagu notice ...` commands: notices for applications and windows, and the working-day calendar."""
from __future__ import annotations

import datetime as dt
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

KIND_CHOICE = click.Choice(["one_time", "award", "non_support", "tax_self_assessment"])


def _date(ctx, param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"应为日期 YYYY-MM-DD，实际为 {value!r}") from None


def _fail(exc: Exception):
    raise click.ClickException(str(exc))


def _pdf_worker(args):
    html, path = args
    from notices.pdf import html_to_pdf

    Path(path).write_bytes(html_to_pdf(html))
    return path


def register(main):
    """Attach this module's commands to the `yagu` group."""

    @main.group("notice", help="告知书、兑现通知书等文书；工作日计算")
    def notice():
        pass

    @notice.command("render", help="为一个申请生成文书（HTML，加 --pdf 生成 PDF）")
    @click.argument("application_id")
    @click.option("--kind", type=KIND_CHOICE, required=True, help="文书种类")
    @click.option("--pdf", "as_pdf", is_flag=True, help="输出 PDF")
    @click.option("--out", type=click.Path(path_type=Path), help="输出文件或目录（默认当前目录）")
    @click.option("--templates", type=click.Path(path_type=Path), help="自定义模板目录（覆盖 YAGU_NOTICE_TEMPLATES）")
    @click.option("--issued-on", callback=_date, help="出具日期（默认今天，北京时间；重新生成时沿用原日期）")
    def render(application_id, kind, as_pdf, out, templates, issued_on):
        from notices.context import NoticeError
        from notices.render import NoticeRenderer
        from notices.service import NoticeService
        from notices.workdays import WorkdayError
        from store import default_database

        try:
            svc = NoticeService(default_database(), renderer=NoticeRenderer(templates))
            doc = svc.render(application_id, kind, issued_on=issued_on)
            path = _target(out, doc.filename_stem + (".pdf" if as_pdf else ".html"))
            if as_pdf:
                from notices.pdf import html_to_pdf

                path.write_bytes(html_to_pdf(doc.html))
            else:
                path.write_text(doc.html, encoding="utf-8")
        except (NoticeError, WorkdayError) as exc:
            _fail(exc)
        click.echo(f"{doc.number}  {doc.issued_on.isoformat()}  {path}")

    @notice.command("render-window", help="为一个申报窗口的全部申请生成文书（带进度条）")
    @click.argument("window_id")
    @click.option("--out", type=click.Path(path_type=Path), required=True, help="输出目录")
    @click.option("--pdf", "as_pdf", is_flag=True, help="输出 PDF")
    @click.option("--kind", "kinds", type=KIND_CHOICE, multiple=True, help="只生成这些种类（可多次）；默认全部适用的")
    @click.option("--templates", type=click.Path(path_type=Path), help="自定义模板目录")
    @click.option("--issued-on", callback=_date, help="出具日期（默认今天，北京时间）")
    @click.option("--jobs", type=int, default=min(2, os.cpu_count() or 1), show_default=True, help="PDF 并行进程数")
    def render_window(window_id, out, as_pdf, kinds, templates, issued_on, jobs):
        from notices.context import NoticeError
        from notices.render import NoticeRenderer
        from notices.service import NoticeService, load_application
        from notices.workdays import WorkdayError
        from store import default_database
        from store.models import Application
        from sqlalchemy import select

        db = default_database()
        try:
            svc = NoticeService(db, renderer=NoticeRenderer(templates))
            with db.read_session() as s:
                ids = s.execute(select(Application.id).where(Application.window_id == window_id)
                                .order_by(Application.uscc)).scalars().all()
        except (NoticeError, WorkdayError) as exc:
            _fail(exc)
        if not ids:
            _fail(click.ClickException(f"申报窗口 {window_id} 没有申请（或窗口不存在）"))
        out.mkdir(parents=True, exist_ok=True)
        count, problems = 0, []
        pool = ProcessPoolExecutor(max_workers=jobs) if as_pdf and jobs > 1 else None
        pending = []
        with click.progressbar(ids, label=f"生成 {window_id} 文书", show_pos=True, show_eta=True) as bar:
            for aid in bar:
                try:
                    app = load_application(db, aid)
                    for kind in svc.kinds_for(app):
                        if kinds and kind not in kinds:
                            continue
                        doc = svc.render(aid, kind, issued_on=issued_on, app=app)
                        path = out / (doc.filename_stem + (".pdf" if as_pdf else ".html"))
                        if not as_pdf:
                            path.write_text(doc.html, encoding="utf-8")
                        elif pool:
                            pending.append(pool.submit(_pdf_worker, (doc.html, str(path))))
                            if len(pending) >= 4 * jobs:        # bounded memory, honest progress
                                pending.pop(0).result()
                        else:
                            _pdf_worker((doc.html, str(path)))
                        count += 1
                except (NoticeError, WorkdayError) as exc:
                    problems.append(f"{aid}: {exc}")
            for f in pending:
                f.result()
        if pool:
            pool.shutdown()
        click.echo(f"已生成 {count} 份文书，保存在 {out}")
        if problems:
            click.echo(f"{len(problems)} 个申请未能生成：", err=True)
            for p in problems:
                click.echo("  " + p, err=True)
            raise SystemExit(1)

    @notice.command("preview", help="不经数据库，从资格判定结果 JSON 生成文书（无编号）")
    @click.argument("result_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--kind", type=KIND_CHOICE, required=True)
    @click.option("--name", help="企业名称（JSON 中无 enterprise 时必填）")
    @click.option("--uscc", help="统一社会信用代码（JSON 中无 enterprise 时必填）")
    @click.option("--pdf", "as_pdf", is_flag=True)
    @click.option("--out", type=click.Path(path_type=Path), required=True, help="输出文件")
    @click.option("--templates", type=click.Path(path_type=Path))
    @click.option("--issued-on", callback=_date)
    def preview(result_file, kind, name, uscc, as_pdf, out, templates, issued_on):
        """RESULT_FILE: the body of POST /v1/eligibility or /v1/tax/self-assessment, optionally
        with an "enterprise": {uscc, name} key."""
        from notices.context import NoticeError, make_context
        from notices.render import NoticeRenderer
        from notices.service import today_shanghai
        from notices.workdays import WorkdayError

        try:
            data = json.loads(result_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            _fail(click.ClickException(f"{result_file}: 不是有效的 JSON（{exc}）"))
        ent = data.get("enterprise") or {"uscc": uscc, "name": name}
        missing = [k for k in ("uscc", "name") if not ent.get(k)]
        if missing:
            _fail(click.ClickException("缺少企业信息：" + "、".join(f"--{k}" for k in missing)))
        results = data.get("results") or data.get("items") or []
        try:
            ctx = make_context(kind, ent, results, issued_on or today_shanghai(),
                               conflicts=data.get("conflicts"), tax_year=data.get("tax_year"))
            html = NoticeRenderer(templates).render_html(ctx)
            if as_pdf:
                from notices.pdf import html_to_pdf

                out.write_bytes(html_to_pdf(html))
            else:
                out.write_text(html, encoding="utf-8")
        except (NoticeError, WorkdayError) as exc:
            _fail(exc)
        click.echo(str(out))

    @notice.group("workdays", help="工作日计算（法定节假日不计，调休上班日计入，起算日不计入）")
    def workdays():
        pass

    @workdays.command("add", help="START 之后第 N 个工作日")
    @click.argument("start", callback=_date)
    @click.argument("n", type=click.IntRange(min=0))
    def wd_add(start, n):
        from notices.workdays import WorkdayError, add_workdays

        try:
            click.echo(add_workdays(start, n).isoformat())
        except WorkdayError as exc:
            _fail(exc)

    @workdays.command("between", help="A（不计）到 B（计）之间的工作日数")
    @click.argument("a", callback=_date)
    @click.argument("b", callback=_date)
    def wd_between(a, b):
        from notices.workdays import WorkdayError, workdays_between

        try:
            click.echo(str(workdays_between(a, b)))
        except WorkdayError as exc:
            _fail(exc)

    @workdays.command("due", help="办理时限到期日；LIMIT 见 rules/workdays/service-limits.yaml")
    @click.argument("start", callback=_date)
    @click.argument("limit")
    def wd_due(start, limit):
        from notices.workdays import WorkdayError, due_date, service_limits

        try:
            d = due_date(start, limit)
        except WorkdayError as exc:
            _fail(exc)
        lim = service_limits()[limit]
        click.echo(f"{d.isoformat()}  {lim.name}（{lim.workdays}个工作日；{lim.source}）")

    @workdays.command("check", help="列出某年的放假日、调休上班日和工作日总数，供与通知原文核对")
    @click.argument("year", type=int)
    def wd_check(year):
        from notices.workdays import WorkdayError, default_calendar

        try:
            sched = default_calendar().schedule(year)
        except WorkdayError as exc:
            _fail(exc)
        src = "chinesecalendar 程序库" if sched.source == "chinese_calendar" else sched.source[5:]
        click.echo(f"{year} 年，数据来源：{src}")
        for d in sorted(sched.holidays):
            click.echo(f"  放假  {d.isoformat()} 周{'一二三四五六日'[d.weekday()]}  {sched.names.get(d, '')}")
        for d in sorted(sched.makeup_workdays):
            click.echo(f"  上班  {d.isoformat()} 周{'一二三四五六日'[d.weekday()]}")
        days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        n = sum(sched.is_workday(dt.date(year, 1, 1) + dt.timedelta(days=i)) for i in range(days))
        click.echo(f"全年工作日 {n} 天")


def _target(out: Path | None, name: str) -> Path:
    if out is None:
        return Path(name)
    if out.is_dir() or str(out).endswith(os.sep):
        out.mkdir(parents=True, exist_ok=True)
        return out / name
    out.parent.mkdir(parents=True, exist_ok=True)
    return out
