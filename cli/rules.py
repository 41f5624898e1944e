"""`yagu rules list|validate|test` and `yagu check PROFILE.json`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine import Evaluator, UnknownBenefit
from engine.examples import run_examples
from engine.loader import RuleLoadError, load_benefit_file, load_fields, load_rulebook, rules_dir
from engine.profile import ProfileError, parse_profile
from engine.vocabulary import (KIND, OUTCOME, OUTCOME_MARK, PROVISIONAL_AMOUNT, PROVISIONAL_CRITERION, cn_date, money,
                               ruleset_text)
from cli.common import DATE
from notices.settings import SettingsError, load_settings
from store.awards import awarded_among
from store.db import Database, database_url


def _book(path: str | None):
    try:
        return load_rulebook(path)
    except RuleLoadError as e:
        _print_problems(e.problems)
        raise SystemExit(1)


def _print_problems(problems) -> None:
    for p in problems:
        click.echo(str(p), err=True)
    click.echo(f"共 {len(problems)} 个问题，规则未加载。", err=True)


def _ledger(use: bool | None, prof, registry):
    """This profile's entries in the configured store's award ledger; None (→ the criterion is
    unknown) when there is no store or it cannot answer."""
    if use is False:
        return None
    url = database_url()
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    db = Database(url)
    try:
        subjects = [info.key_of(i) for info in registry.subjects.values() for i in getattr(prof, info.name) or []]
        return awarded_among(db, subjects)
    finally:
        db.dispose()


def register(main: click.Group) -> None:
    @main.group("rules", help="查看、校验和测试规则文件（rules/）")
    def rules() -> None:
        pass

    @rules.command("list", help="列出全部政策事项")
    @click.option("--rules-dir", type=click.Path(exists=True, file_okay=False), default=None,
                  help="规则目录（默认 $YAGU_RULES_DIR 或仓库中的 rules/）")
    def list_(rules_dir: str | None) -> None:
        book = _book(rules_dir)
        for b in book.benefits.values():
            s = b.spec
            periods = "；".join(f"{cn_date(p.from_)}至{cn_date(p.to) if p.to else '长期'}" for p in s.in_force)
            kind = KIND[s.kind]
            unit = "按企业" if s.unit == "enterprise" else f"按{book.fields.list_of(s.unit).item_label}"
            click.echo(f"{s.id:28} {s.title}（{kind}，{unit}，有效期 {periods}，{len(b.criteria)} 项条件）")
        click.echo(f"规则版本：{book.version}")

    @rules.command("validate", help="校验规则文件：一次列出全部问题（文件:行号: 说明）")
    @click.argument("path", required=False, type=click.Path(exists=True), metavar="[目录或文件]")
    def validate(path: str | None) -> None:
        target = Path(path) if path else rules_dir()
        if target.is_file():
            root = target.parent.parent
            problems = []
            registry = load_fields(root, problems)
            if registry is not None:
                _benefit, problems = load_benefit_file(target, root, registry)
            if problems:
                _print_problems(problems)
                raise SystemExit(1)
            click.echo(f"{target}: 校验通过")
            return
        settings = []           # the notice settings beside the rules: a misspelt key stops every notice
        if (target / "notice-settings.yaml").exists():
            try:
                load_settings(target / "notice-settings.yaml")
            except SettingsError as e:
                settings = e.problems
        try:
            book = load_rulebook(str(target))
        except RuleLoadError as e:
            _print_problems([*e.problems, *settings])
            raise SystemExit(1)
        if settings:
            for p in settings:
                click.echo(p, err=True)
            click.echo(f"共 {len(settings)} 个问题：规则可以加载，但文书设置有误，不能出具正式文书。", err=True)
            raise SystemExit(1)
        n = sum(len(b.criteria) for b in book.benefits.values())
        click.echo(f"校验通过：{len(book.benefits)} 个事项，{n} 项条件，规则版本 {book.version}")

    @rules.command("test", help="运行规则文件中的示例（examples），比对期望结果")
    @click.argument("path", required=False, type=click.Path(exists=True), metavar="[文件]")
    @click.option("--backend", type=click.Choice(["durable_rules", "interpreter"]), default="durable_rules",
                  show_default=True, help="判定引擎（interpreter 为纯 Python 参照语义）")
    def test(path: str | None, backend: str) -> None:
        target = Path(path) if path else rules_dir()
        root = target.parent.parent if target.is_file() else target
        book = _book(str(root))
        ev = Evaluator(book, backend)
        failed = total = 0
        for b in book.benefits.values():
            if target.is_file() and b.source.resolve() != target.resolve():
                continue
            for run in run_examples(ev, b):
                total += 1
                if run.ok:
                    click.echo(f"通过  {b.id}: {run.name}")
                else:
                    failed += 1
                    click.echo(f"失败  {b.source.name}:{run.line} {b.id}: {run.name}")
                    for m in run.mismatches:
                        click.echo(f"        {m}")
        click.echo(f"共 {total} 个示例：{total - failed} 个通过，{failed} 个未通过")
        if failed or not total:
            raise SystemExit(1)

    @main.command("check", help="对企业画像（JSON）逐项判定全部政策，列出每一项条件")
    @click.argument("profile", type=click.File("rb"), metavar="画像文件")
    @click.option("--as-of", "as_of", type=DATE, default=None,
                  help="判定日期（默认今天，北京时间）")
    @click.option("--benefit", "benefits", multiple=True, help="只判定指定事项（可重复）")
    @click.option("--json", "as_json", is_flag=True, help="输出接口契约的 JSON")
    @click.option("--ledger/--no-ledger", default=None,
                  help="是否查询兑现台账（默认：数据库存在时查询；无法查询时“未获支持”一项为待补充）")
    @click.option("--rules-dir", type=click.Path(exists=True, file_okay=False), default=None,
                  help="按另一套规则目录判定（如规则草案；默认 $YAGU_RULES_DIR 或仓库中的 rules/）")
    def check(profile, as_of, benefits, as_json: bool, ledger, rules_dir: str | None) -> None:
        try:
            data = json.loads(profile.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise click.ClickException(f"{profile.name} 不是 UTF-8 编码的文本（请另存为 UTF-8）")
        except json.JSONDecodeError as e:
            raise click.ClickException(f"{profile.name} 不是有效的 JSON：第 {e.lineno} 行第 {e.colno} 列附近格式有误"
                                       "（检查引号、逗号和括号）")
        if isinstance(data, dict) and "profile" in data and "uscc" not in data:
            data = data["profile"]      # accept a saved /v1/eligibility request body too
        ev = Evaluator(_book(rules_dir))
        try:
            prof = parse_profile(data, ev.registry)
        except ProfileError as e:
            for p in e.problems:
                click.echo(f"{ev.registry.label(p.path, data) if p.path else '企业画像'}：{p.message}", err=True)
            click.echo(f"企业画像共 {len(e.problems)} 个问题。", err=True)
            raise SystemExit(1)
        awarded = _ledger(ledger, prof, ev.registry)
        try:
            if benefits:
                resp = ev.evaluate(prof, as_of, list(benefits), awarded=awarded)
            else:       # as the web self-check: certificates in their own windows, with suggestions
                resp = ev.self_check(prof, as_of, awarded=awarded)
        except UnknownBenefit as e:
            raise click.ClickException(str(e))
        if as_json:
            click.echo(json.dumps(resp.model_dump(mode="json"), ensure_ascii=False, indent=2))
            return
        _print_human(prof, resp, ev)


def _print_human(prof, resp, ev) -> None:
    """The self-check as the web page shows it, in text: each benefit, each criterion (with
    what it saw, what it requires, its basis and, if 暂定, where it comes from), the amount and
    its note, what is missing, and the tax preferences only one of which can be claimed."""
    registry = ev.registry
    out = sys.stdout
    name = prof.name

    def seen(path: str, v) -> str:
        if path in registry.lists:
            if v is None:
                return f"{registry.label(path)}：未提供"
            count = f"{v['min']}～{v['max']}（含待核实记录）" if isinstance(v, dict) else \
                len(v) if isinstance(v, list) else v
            return f"{registry.label(path)}中符合条件的记录：{count} 条"
        return f"{registry.label(path)}：{registry.value_text(path, v)}"

    click.echo(f"企业：{name}　判定日期：{cn_date(resp.as_of)}　规则版本：{ruleset_text(resp.ruleset_version)}",
               file=out)
    for r in resp.results:
        subject = f"（{registry.list_of(r.subject.type).item_label} {r.subject.id}）" if r.subject else ""
        amount = ""
        if r.amount_cny is not None:
            amount = f"　金额：{money(r.amount_cny)}" + (f"（{PROVISIONAL_AMOUNT}）" if r.amount_provisional else "")
        click.echo("", file=out)
        year = f"（{r.tax_year}年度）" if r.tax_year else ""
        click.echo(f"■ {r.title}{subject}{year}：{r.status_text}{amount}", file=out)
        if r.amount_note:
            click.echo(f"  金额说明：{r.amount_note}", file=out)
        if r.note:
            click.echo(f"  {r.note}", file=out)
        for c in r.criteria:
            observed = "，".join(seen(k, v) for k, v in c.observed.items())
            click.echo(f"  {OUTCOME_MARK[c.outcome]} {OUTCOME[c.outcome]}　{c.text}", file=out)
            click.echo(f"      所见：{observed or '—'}　要求：{c.threshold or '—'}", file=out)
            click.echo(f"      依据：{'；'.join(c.legal_basis)}", file=out)
            if c.provisional:
                click.echo(f"      {PROVISIONAL_CRITERION}" + (f"：{c.provisional_note}" if c.provisional_note else ""),
                           file=out)
        if r.route:
            click.echo(f"  适用情形：{r.route.title}（依据：{'；'.join(r.route.legal_basis)}）", file=out)
        if r.missing_facts:
            click.echo("  需补充：" + "；".join(registry.label(p, prof) for p in r.missing_facts), file=out)
        for s in r.suggestions:
            click.echo(f"  怎样才能符合（供参考）：{s.text}", file=out)
        if r.missing_materials:
            names = {m.id: m.name for m in r.required_materials}
            click.echo("  需提供材料：" + "；".join(names[m] for m in r.missing_materials), file=out)
    tax = [r for r in resp.results if r.kind == "tax"]
    if tax:                 # only one of some can be claimed: said as the web page says it
        year = next((r.tax_year for r in tax if r.tax_year), resp.as_of.year)
        _, conflicts = ev.tax_view(tax, year, prof, resp.as_of)
        titles = {r.benefit_id: r.title for r in tax}
        for cf in conflicts:
            click.echo("", file=out)
            click.echo(f"※ 只能选择其一：{'、'.join(titles.get(b, b) for b in cf.benefits)}。{cf.reason}", file=out)
            if cf.choice:       # which costs least, from the taxable income
                click.echo(f"  {cf.choice}", file=out)
