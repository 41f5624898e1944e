"""Load and validate the rule files. Every problem of every file is collected and reported
as `file:line: message`; if there is any, nothing is loaded (RuleLoadError).
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.conditions import Cond, fact_paths, fits_scale, leaves, parse_condition
from engine.messages import pydantic_message
from engine.profile import ProfileError, parse_profile
from engine.registry import FieldRegistry, RegistryError, registry_from
from engine.ruleschema import (BenefitFile, Parameter, CalendarFile, CommonFile, Document, IndexFile,
                               OptionalPeriod, ParamValue)
from engine.version import ENGINE_VERSION
from engine.vocabulary import OUTCOME, STATUS
from engine.yamlsource import SourceDoc, YamlSyntaxError, load_yaml

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


@dataclass(frozen=True)
class RuleProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RuleLoadError(Exception):
    def __init__(self, problems: list[RuleProblem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass
class CompiledCriterion:
    id: str
    text: str
    basis: tuple[tuple[str, Document], ...]   # (rendered citation, the text cited)
    materials: tuple[str, ...]
    applies: OptionalPeriod | None
    cond: Cond
    reads: tuple[str, ...]          # catalogue paths / list names, in order
    provisional: bool = False
    provisional_note: str | None = None     # where the condition comes from, until a text confirms it

    def applies_on(self, d: date) -> bool:
        return self.applies is None or self.applies.contains(d)

    def basis_on(self, d: date) -> list[str]:
        """The citations of the texts that govern a decision on `d`, in the file's order."""
        return [text for text, doc in self.basis if doc.cited_on(d)] or [text for text, _ in self.basis]


@dataclass
class Benefit:
    spec: BenefitFile
    criteria: list[CompiledCriterion]
    source: Path
    amount_conds: list[Any] = field(default_factory=list)   # parsed `amount.when`, per spec
    material_conds: dict[str, Any] = field(default_factory=dict)   # parsed `needed_when`, by material

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def docs(self) -> dict[str, Document]:
        return {d.id: d for d in self.spec.legal_basis}

    def in_force_on(self, d: date) -> bool:
        return any(p.contains(d) for p in self.spec.in_force)

    def param(self, name: str, d: date) -> ParamValue | None:
        p = self.spec.parameters.get(name)
        return p.at(d) if p else None


@dataclass(frozen=True)
class WindowContext:
    """The application window a subject is judged in (a real window, or the default calendar's)."""
    id: str
    label: str
    opens_on: date
    closes_on: date
    coverage_from: date
    coverage_to: date
    as_of: date | None = None
    amounts: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    provisional: bool = False


@dataclass
class DefaultCalendar:
    spec: CalendarFile

    def covering(self, d: date) -> WindowContext | None:
        """The default window whose coverage holds `d` (where a certificate obtained that day
        may apply)."""
        for y in (d.year - 1, d.year, d.year + 1):
            for w in self.windows_of_year(y):
                if w.coverage_from <= d <= w.coverage_to:
                    return w
        return None

    def windows_of_year(self, year: int) -> list[WindowContext]:
        def md(s: str, y: int) -> date:
            m, d = map(int, s.split("-"))
            return date(y, m, d)

        out = []
        for t in self.spec.windows:
            out.append(WindowContext(
                id=f"{year}-{t.half}", label=t.label.format(year=year),
                opens_on=md(t.opens_on, year), closes_on=md(t.closes_on, year),
                coverage_from=md(t.coverage_from.month_day, year + t.coverage_from.year_offset),
                coverage_to=md(t.coverage_to.month_day, year + t.coverage_to.year_offset),
                provisional=self.spec.provisional))
        return sorted(out, key=lambda w: w.closes_on)

    def next_window(self, as_of: date) -> WindowContext:
        """The first default window whose application period ends on or after `as_of`."""
        for year in (as_of.year, as_of.year + 1):
            for w in self.windows_of_year(year):
                if w.closes_on >= as_of:
                    return w
        raise ValueError("默认申报日历中没有可用的窗口")

    def by_id(self, window_id: str) -> WindowContext | None:
        """The default window of an id such as 2026-H1; None for other ids (and for years no
        calendar date can hold, e.g. 0000-H1)."""
        try:
            year = int(window_id[:4])
        except ValueError:
            return None
        if not 1900 <= year <= 2200:
            return None
        return next((w for w in self.windows_of_year(year) if w.id == window_id), None)


@dataclass
class Rulebook:
    benefits: dict[str, Benefit]        # in the order of rules/index.yaml
    fields: FieldRegistry
    calendar: DefaultCalendar
    common: CommonFile
    version: str
    files: list[Path]
    root: Path
    sources: dict[str, str] = field(default_factory=dict)   # relative path → text, as loaded

    def amount_override_problems(self, amounts: Any) -> list[tuple[str, str]]:
        """Problems of a window's parameter overrides (`{param: value}` or
        `{"benefit-id.param": value}`): unknown names, and values whose shape differs from
        the parameter's (a number for a number, the same table keys for a lookup table)."""
        if not isinstance(amounts, dict):
            return [("amounts", "金额覆盖必须是对象 {参数名: 取值}")]
        out: list[tuple[str, str]] = []
        for key, value in amounts.items():
            bid, _, name = key.rpartition(".")
            params = [b.spec.parameters[name] for b in self.benefits.values()
                      if name in b.spec.parameters and bid in ("", b.id)]
            if not params:
                out.append((f"amounts.{key}", f"没有名为 `{key}` 的参数"))
                continue
            shape = params[0].values[-1].value
            out += [(f"amounts.{key}{where}", msg) for where, msg in _shape_problems(shape, value)]
        return out


def _shape_problems(shape: Any, value: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [(where, f"应为与规则参数相同结构的对象（键：{'、'.join(map(str, shape))}）")]
        out = [(f"{where}.{k}", "规则参数中没有这个键") for k in value if k not in shape]
        out += [(f"{where}.{k}", "缺少这个键") for k in shape if k not in value]
        for k in shape:
            if k in value:
                out += _shape_problems(shape[k], value[k], f"{where}.{k}")
        return out
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        said = "文字“" + value + "”" if isinstance(value, str) else "是/否" if isinstance(value, bool) \
            else "空值" if value is None else "对象或列表" if isinstance(value, (dict, list)) else f"{value:g}"
        return [(where, f"应为非负数（元），不能是{said}")]
    return []


def rules_dir() -> Path:
    return Path(os.environ.get("YAGU_RULES_DIR") or DEFAULT_RULES_DIR)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve().parent))
    except ValueError:
        return str(path)


@functools.cache
def _rule_keys() -> list[str]:
    """Every key a rule file may hold (fields and aliases of the rule schema's models)."""
    import engine.ruleschema as rs
    keys = set()
    for m in vars(rs).values():
        if isinstance(m, type) and issubclass(m, rs.BaseModel) and m is not rs.BaseModel:
            keys |= {f.alias or name for name, f in m.model_fields.items()}
    return sorted(keys)


def _pydantic_problems(exc: ValidationError, doc: SourceDoc, name: str) -> list[RuleProblem]:
    out = []
    for e in exc.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith(("function-", "tagged-union"))))
        # pydantic puts union branch names (e.g. `float`, `dict[str,any]`) into locs: drop them
        clean = tuple(x for x in loc if not (isinstance(x, str) and ("[" in x or x in ("float", "int", "bool", "str", "Lookup", "NumberRef", "list[AmountSpec]", "AmountSpec"))))
        # where in the file, as its editor counts: list items from 1 (criteria 第4项, not criteria.3)
        where = " › ".join(f"第{x + 1}项" if isinstance(x, int) else str(x) for x in clean) or "(文件)"
        msg = pydantic_message(e)
        if e["type"] == "extra_forbidden" and clean and isinstance(clean[-1], str):
            near = difflib.get_close_matches(clean[-1], _rule_keys(), n=1, cutoff=0.7)
            msg = f"未知的键 `{clean[-1]}`（拼写错误？" + (f"是否指 `{near[0]}`）" if near else "见 docs/rules.md）")
        out.append(RuleProblem(name, doc.line_of(clean), f"{where}: {msg}"))
    return out


def _check_benefit(spec: BenefitFile, doc: SourceDoc, name: str, stem: str, registry: FieldRegistry
                   ) -> tuple[list[CompiledCriterion], list[RuleProblem], list[Any]]:
    problems: list[RuleProblem] = []

    def err(loc: tuple, msg: str) -> None:
        problems.append(RuleProblem(name, doc.line_of(loc), msg))

    if spec.id != stem:
        err(("id",), f"id `{spec.id}` 必须与文件名 `{stem}.yaml` 一致")
    if spec.unit != "enterprise" and spec.unit not in registry.subjects:
        err(("unit",), f"unit `{spec.unit}` 应为 enterprise 或 rules/fields.yaml 中列表的 subject"
                       f"（{'、'.join(registry.subjects)}）")
        return [], problems, ([], {})
    problems += _duplicate_ids(doc, name)
    docs = {d.id for d in spec.legal_basis}
    materials = {m.id for m in spec.materials}
    criteria = {c.id for c in spec.criteria}
    for i, p in enumerate(spec.in_force):
        if p.basis and p.basis not in docs:
            err(("in_force", i, "basis"), f"引用了未定义的法律依据 `{p.basis}`")
    for pname, param in spec.parameters.items():
        for j, v in enumerate(param.values):
            if v.reference.basis not in docs:
                err(("parameters", pname, "values", j, "reference", "basis"),
                    f"参数 {pname} 的取值引用了未定义的法律依据 `{v.reference.basis}`")
    param_types = {k: param_type(p) for k, p in spec.parameters.items()
                   if all(not isinstance(v.value, dict) for v in p.values)}
    compiled = []
    for i, c in enumerate(spec.criteria):
        loc = ("criteria", i)
        for j, b in enumerate(c.basis):
            if b.ref not in docs:
                err(loc + ("basis", j, "ref"), f"引用了未定义的法律依据 `{b.ref}`")
        for j, m in enumerate(c.materials):
            if m not in materials:
                err(loc + ("materials", j), f"引用了未定义的材料 `{m}`")
        cond, cps = parse_condition(c.when, loc + ("when",), param_types, spec.unit, registry)
        for p in cps:
            err(p.loc, p.message)
        if cond is not None:
            _check_param_precision(spec, cond, loc, err)
        for ph in _placeholders(c.text):
            if ph.startswith("param.") and ph[6:] not in spec.parameters:
                err(loc + ("text",), f"文字中的占位符 {{{ph}}} 引用了未定义的参数")
            elif not ph.startswith("param.") and ph not in ("window.label", "window.coverage_from",
                                                            "window.coverage_to", "window.opens_on",
                                                            "window.closes_on", "as_of"):
                err(loc + ("text",), f"未知的占位符 {{{ph}}}")
        if cond is not None:
            by_id = {d.id: d for d in spec.legal_basis}
            compiled.append(CompiledCriterion(
                id=c.id, text=c.text,
                basis=tuple((by_id[b.ref].citation(b.article), by_id[b.ref]) for b in c.basis if b.ref in by_id),
                materials=tuple(c.materials), applies=c.applies, cond=cond,
                reads=tuple(fact_paths(cond)), provisional=c.provisional is not None,
                provisional_note=c.provisional.note if c.provisional else None))
    amount_conds: list[Any] = []
    for i, spec_amount in enumerate(spec.amount_specs()):
        loc = ("amount", i) if isinstance(spec.amount, list) else ("amount",)
        amount_cond = None
        if spec_amount.when is not None:
            amount_cond, cps = parse_condition(spec_amount.when, loc + ("when",), param_types, spec.unit,
                                               registry)
            for p in cps:
                err(p.loc, p.message)
        amount_conds.append(amount_cond)
        refs: list[str] = []
        facts: list[str] = []
        for m in spec_amount.materials:
            if m not in materials:
                err(loc, f"金额引用了未定义的材料 `{m}`")
        if spec_amount.lookup:
            refs.append(spec_amount.lookup.param)
            facts += spec_amount.lookup.keys
            for k in spec_amount.lookup.if_unknown:
                if k not in spec_amount.lookup.keys:
                    err(loc, f"if_unknown 中的 `{k}` 不是 lookup 的键")
        if spec_amount.brackets:
            facts.append(spec_amount.brackets.of)
            for band in spec_amount.brackets.bands:
                refs += [x.param for x in (band.up_to, band.rate) if hasattr(x, "param")]
        facts += spec_amount.times
        if spec_amount.multiply:
            facts.append(spec_amount.multiply.fact)
            refs += [spec_amount.multiply.by.param] if hasattr(spec_amount.multiply.by, "param") else []
        for r in refs:
            if r not in spec.parameters:
                err(loc, f"金额引用了未定义的参数 `{r}`")
        for f in facts:
            d = registry.facts.get(f)
            if d is None or d.scope not in ("enterprise", spec.unit):
                err(loc, f"金额引用了未知的事实路径 `{f}`")
    for i, r in enumerate(spec.routes):
        for j, cid in enumerate(r.criteria):
            if cid not in criteria:
                err(("routes", i, "criteria", j), f"情形 {r.id} 引用了未定义的条件 `{cid}`")
        for j, b in enumerate(r.basis):
            if b.ref not in docs:
                err(("routes", i, "basis", j, "ref"), f"引用了未定义的法律依据 `{b.ref}`")
    if spec.tax and spec.tax.rate:
        r = spec.tax.rate
        if r.of not in registry.facts:
            err(("tax", "rate", "of"), f"税率适用的事实 `{r.of}` 未在字段登记表中定义")
        if hasattr(r.rate, "param") and r.rate.param not in spec.parameters:
            err(("tax", "rate", "rate"), f"税率引用了未定义的参数 `{r.rate.param}`")
    crit_ids = {c.id for c in spec.criteria}
    for i, ex in enumerate(spec.examples):
        loc = ("examples", i)
        try:
            parse_profile(ex.profile, registry)
        except ProfileError as pe:
            for p in pe.problems:
                err(loc + ("profile",), f"示例「{ex.name}」的企业画像无效：{p.path or '(根)'}: {p.message}")
        expects = [ex.expect] if "subjects" not in ex.expect else list((ex.expect.get("subjects") or {}).values())
        for e in expects:
            if not isinstance(e, dict):
                err(loc + ("expect",), "expect 的每一项必须是映射")
                continue
            if e.get("route") is not None and e["route"] not in {r.id for r in spec.routes}:
                err(loc + ("expect",), f"示例「{ex.name}」期望了不存在的情形 `{e['route']}`")
            for cid, outcome in (e.get("criteria") or {}).items():
                if cid not in crit_ids:
                    err(loc + ("expect",), f"示例「{ex.name}」期望了不存在的条件 `{cid}`")
                elif outcome not in OUTCOME:
                    err(loc + ("expect",), f"示例「{ex.name}」条件 `{cid}` 的期望结果 `{outcome}` 无效，应为 "
                                           + "、".join(f"{k}（{v}）" for k, v in OUTCOME.items()))
            if e.get("status") not in (None, *STATUS):
                err(loc + ("expect",), f"示例「{ex.name}」的期望状态 `{e.get('status')}` 无效，应为 "
                                       + "、".join(f"{k}（{v}）" for k, v in STATUS.items()))
    material_conds: dict[str, Any] = {}
    for i, m in enumerate(spec.materials):
        if m.needed_when is not None:
            cond, cps = parse_condition(m.needed_when, ("materials", i, "needed_when"), param_types,
                                        spec.unit, registry)
            for p in cps:
                err(p.loc, p.message)
            material_conds[m.id] = cond
    return compiled, problems, (amount_conds, material_conds)


def param_type(p: Parameter) -> str:
    """`list` for a parameter whose values are code lists (compared with `in`), else `number`."""
    return "list" if all(isinstance(v.value, list) for v in p.values) else "number"


def _check_param_precision(spec: BenefitFile, cond: Cond, loc: tuple, err) -> None:
    """A parameter compared with a fact must be exact in that fact's fixed point."""
    for leaf in leaves(cond):
        for v in getattr(leaf, "values", ()):
            name = getattr(v, "name", None)
            param = spec.parameters.get(name) if name else None
            for j, pv in enumerate(param.values if param else []):
                if isinstance(pv.value, (int, float)) and not fits_scale(pv.value, leaf.scale):
                    err(("parameters", name, "values", j, "value"),
                        f"参数 {name} 的取值 {pv.value} 的小数位数超过所比较事实的精度")


def _raw_param_type(raw: Any) -> str:
    values = raw.get("values") if isinstance(raw, dict) else None
    lists = isinstance(values, list) and values and all(
        isinstance(v, dict) and isinstance(v.get("value"), list) for v in values)
    return "list" if lists else "number"


def _duplicate_ids(doc: SourceDoc, name: str) -> list[RuleProblem]:
    """Ids defined twice in a benefit file (a second citation or material would silently be
    used instead of the first), read from the raw data so that a file with other problems
    reports them too."""
    data = doc.data if isinstance(doc.data, dict) else {}
    out = []
    for key, what in (("legal_basis", "法律依据"), ("materials", "材料"), ("criteria", "条件"), ("routes", "情形")):
        first: dict[str, int] = {}
        for i, item in enumerate(data.get(key) if isinstance(data.get(key), list) else []):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                continue
            line = doc.line_of((key, i, "id"))
            if ident in first:
                out.append(RuleProblem(name, line, f"{what} id `{ident}` 重复（第{first[ident]}行已定义）"))
            else:
                first[ident] = line
    return out


def _raw_condition_problems(doc: SourceDoc, name: str, registry: FieldRegistry) -> list[RuleProblem]:
    """Condition problems of a file whose structure is invalid (best effort on the raw data)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    unit = data.get("unit") if data.get("unit") in ("enterprise", *registry.subjects) else "enterprise"
    crits = data.get("criteria") if isinstance(data.get("criteria"), list) else []
    out = []
    for i, c in enumerate(crits):
        if isinstance(c, dict) and "when" in c:
            _cond, ps = parse_condition(c["when"], ("criteria", i, "when"),
                                        {k: _raw_param_type(v) for k, v in params.items()}, unit, registry)
            out += [RuleProblem(name, doc.line_of(p.loc), p.message) for p in ps]
    return out


def _placeholders(text: str) -> list[str]:
    return re.findall(r"\{([^{}]+)\}", text)


def _load_file(path: Path, root: Path, problems: list[RuleProblem]) -> SourceDoc | None:
    name = _rel(path, root)
    try:
        return load_yaml(path)
    except YamlSyntaxError as exc:
        problems.append(RuleProblem(name, exc.line, exc.message))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(RuleProblem(name, 1, f"无法读取文件：{exc}"))
    return None


def ruleset_files(root: Path) -> list[Path]:
    """Every file whose content decides a verdict or its explanation (hashed into the version)."""
    return sorted([*root.glob("benefits/*.yaml"), *(root / n for n in ("common.yaml", "fields.yaml",
                                                                       "index.yaml", "windows.yaml"))])


def content_hash(sources: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel, text in sorted(sources.items()):
        h.update(rel.encode() + b"\0")
        h.update(text.encode("utf-8") + b"\0")
    h.update(ENGINE_VERSION.encode())
    return h.hexdigest()


def load_fields(root: Path, problems: list[RuleProblem]) -> FieldRegistry | None:
    path = root / "fields.yaml"
    doc = _load_file(path, root, problems)
    if doc is None:
        return None
    try:
        return registry_from(doc)
    except RegistryError as exc:
        problems += [RuleProblem(_rel(path, root), line, msg) for line, msg in exc.problems]
        return None


def load_benefit_file(path: Path, root: Path, registry: FieldRegistry
                      ) -> tuple[Benefit | None, list[RuleProblem]]:
    """Load and check one benefit file on its own (used by `yagu rules validate FILE`)."""
    problems: list[RuleProblem] = []
    doc = _load_file(path, root, problems)
    if doc is None:
        return None, problems
    name = _rel(path, root)
    try:
        spec = BenefitFile.model_validate(doc.data)
    except ValidationError as exc:
        # Still check the conditions, so one run reports every problem of the file.
        return None, (_pydantic_problems(exc, doc, name) + _raw_condition_problems(doc, name, registry)
                      + _duplicate_ids(doc, name))
    compiled, problems, (amount_conds, material_conds) = _check_benefit(spec, doc, name, path.stem, registry)
    return (Benefit(spec, compiled, path, amount_conds, material_conds) if not problems else None), problems


def _read_index(root: Path, problems: list[RuleProblem]) -> tuple[list[str], SourceDoc | None]:
    path = root / "index.yaml"
    doc = _load_file(path, root, problems) if path.exists() else None
    if doc is None:
        if not path.exists():
            problems.append(RuleProblem(_rel(path, root), 1, "缺少文件"))
        return [], None
    try:
        order = IndexFile.model_validate(doc.data).benefits
    except ValidationError as exc:
        problems += _pydantic_problems(exc, doc, _rel(path, root))
        return [], None
    for i, b in enumerate(order):
        if b in order[:i]:
            problems.append(RuleProblem(_rel(path, root), doc.line_of(("benefits", i)), f"事项 `{b}` 重复列出"))
    return order, doc


def load_rulebook(root: Path | str | None = None) -> Rulebook:
    """Load every rule file under `root` (default: $YAGU_RULES_DIR or <repo>/rules)."""
    root = Path(root) if root is not None else rules_dir()
    if not root.is_dir():       # one line that says so, not every file it should hold
        raise RuleLoadError([RuleProblem(str(root), 1, "规则目录不存在" if not root.exists() else "不是目录")])
    problems: list[RuleProblem] = []
    benefits: dict[str, Benefit] = {}
    files = [p for p in ruleset_files(root) if p.exists()]
    for required in ("windows.yaml", "common.yaml", "fields.yaml"):
        if not (root / required).exists():
            problems.append(RuleProblem(_rel(root / required, root), 1, "缺少文件"))
    registry = load_fields(root, problems) if (root / "fields.yaml").exists() else None
    order, index_doc = _read_index(root, problems)
    if registry is not None:
        for path in files:
            if path.parent.name != "benefits":
                continue
            benefit, ps = load_benefit_file(path, root, registry)
            problems += ps
            if benefit is None:
                continue
            if benefit.id in benefits:
                problems.append(RuleProblem(_rel(path, root), 1, f"事项 id `{benefit.id}` 重复定义"))
            benefits[benefit.id] = benefit
    calendar = common = None
    for fname, model in (("windows.yaml", CalendarFile), ("common.yaml", CommonFile)):
        path = root / fname
        if not path.exists():
            continue
        doc = _load_file(path, root, problems)
        if doc is None:
            continue
        try:
            parsed = model.model_validate(doc.data)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, doc, _rel(path, root))
            continue
        if fname == "windows.yaml":
            calendar = DefaultCalendar(parsed)  # type: ignore[arg-type]
        else:
            common = parsed
            for key in ("settlement_end", "retention_years"):
                if key not in common.parameters:  # type: ignore[union-attr]
                    problems.append(RuleProblem(_rel(path, root), doc.line_of(("parameters",)), f"缺少参数 {key}"))
    if not benefits and not problems:
        problems.append(RuleProblem(_rel(root / "benefits", root), 1, "没有找到任何事项规则文件"))
    if index_doc is not None and registry is not None:
        index_name = _rel(root / "index.yaml", root)
        for i, bid in enumerate(order):
            if not (root / "benefits" / f"{bid}.yaml").exists():
                problems.append(RuleProblem(index_name, index_doc.line_of(("benefits", i)),
                                            f"事项 `{bid}` 没有规则文件 benefits/{bid}.yaml"))
        for path in files:
            if path.parent.name == "benefits" and path.stem not in order:
                problems.append(RuleProblem(index_name, 1, f"规则文件 benefits/{path.name} 未列入 index.yaml"))
    failed = {Path(p.file).stem for p in problems}
    for b in benefits.values():
        if b.spec.tax:
            doc = load_yaml(b.source)
            for i, cf in enumerate(b.spec.tax.conflicts_with):
                # a conflict naming a file that failed to load is that file's problem, reported there
                if cf.benefit not in benefits and cf.benefit not in failed:
                    problems.append(RuleProblem(_rel(b.source, root), doc.line_of(("tax", "conflicts_with", i)),
                                                f"冲突事项 `{cf.benefit}` 未定义"))
    if problems:
        raise RuleLoadError(problems)
    ordered = {bid: benefits[bid] for bid in order if bid in benefits}
    sources = {str(f.relative_to(root)): f.read_text(encoding="utf-8") for f in files}
    return Rulebook(benefits=ordered, fields=registry, calendar=calendar, common=common,  # type: ignore[arg-type]
                    version=content_hash(sources)[:16] + "-" + ENGINE_VERSION, files=files, root=root,
                    sources=sources)
