"""The condition language: parsed from rule YAML into a small typed tree, checked against the
field registry's fact catalogue. Both evaluators (compiler → durable_rules, and the
interpreter) walk this tree.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator, Literal, Union

from engine.registry import Fact, FactType, FieldRegistry

Loc = tuple[str | int, ...]

COMPARE_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between")
COUNT_OPS = ("eq", "lt", "lte", "gt", "gte")
WINDOW_FIELDS = ("coverage_from", "coverage_to", "opens_on", "closes_on")
OP_SYMBOL = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "属于",
             "not_in": "不属于", "between": "介于"}


# ---- right-hand values -------------------------------------------------------------------
@dataclass(frozen=True)
class Literal_:
    value: Any


@dataclass(frozen=True)
class Param:
    name: str


@dataclass(frozen=True)
class AsOf:
    years: int = 0
    months: int = 0
    days: int = 0
    start_of: Literal["year", "month"] | None = None
    end_of: Literal["year", "month"] | None = None


@dataclass(frozen=True)
class WindowDate:
    field: str


@dataclass(frozen=True)
class FactDate:
    """A date fact of the subject (or the enterprise), shifted: `{fact: case.act_on, years: -3}`.
    Inside a count's `where` it anchors the count to each subject (a look-back from the day of
    the act rather than from the evaluation date)."""
    path: str
    years: "int | Param" = 0      # a dated parameter may give the years (a look-back period)
    months: int = 0
    days: int = 0
    sign: int = 1                 # -1 for `before: true` (the offsets count backwards)


Value = Union[Literal_, Param, AsOf, WindowDate, FactDate]


# ---- condition nodes -----------------------------------------------------------------------
@dataclass(frozen=True)
class All:
    children: tuple["Cond", ...]


@dataclass(frozen=True)
class Any_:
    children: tuple["Cond", ...]


@dataclass(frozen=True)
class Not:
    child: "Cond"


@dataclass(frozen=True)
class Compare:
    path: str                     # catalogue path, or item field name inside a count
    op: str
    values: tuple[Value, ...]     # one value; `in`/`not_in`: the list; `between`: (low, high)
    type: FactType
    item_list: str | None = None  # set when this leaf reads a list item's field
    scale: int = 1                # numbers reach the engine as value × scale (fixed point)


@dataclass(frozen=True)
class Count:
    list: str
    where: "Cond | None"
    op: str
    value: Value


Cond = Union[All, Any_, Not, Compare, Count]


def walk(c: Cond) -> Iterator[Cond]:
    yield c
    if isinstance(c, (All, Any_)):
        for ch in c.children:
            yield from walk(ch)
    elif isinstance(c, Not):
        yield from walk(c.child)


def leaves(c: Cond) -> Iterator[Compare | Count]:
    for n in walk(c):
        if isinstance(n, (Compare, Count)):
            yield n


# ---- parsing ---------------------------------------------------------------------------
@dataclass
class ParseProblem:
    loc: Loc
    message: str


class _Parser:
    def __init__(self, params: dict[str, str], unit: str, registry: FieldRegistry):
        self.params = params   # parameter name → "number", or "list" (a list of codes for `in`)
        self.unit = unit
        self.registry = registry
        self.problems: list[ParseProblem] = []

    def err(self, loc: Loc, msg: str) -> None:
        self.problems.append(ParseProblem(loc, msg))

    def cond(self, raw: Any, loc: Loc, item_list: str | None = None) -> Cond | None:
        if not isinstance(raw, dict):
            self.err(loc, "条件必须是映射（all/any/not、fact 比较或 count 计数）")
            return None
        keys = set(raw)
        for combinator in ("all", "any"):
            if combinator in keys:
                if keys != {combinator}:
                    self.err(loc, f"`{combinator}` 不能与其他键并列：{sorted(keys - {combinator})}")
                children = raw[combinator]
                if not isinstance(children, list) or not children:
                    self.err(loc + (combinator,), f"`{combinator}` 需要一个非空列表")
                    return None
                parsed = [self.cond(ch, loc + (combinator, i), item_list) for i, ch in enumerate(children)]
                if any(p is None for p in parsed):
                    return None
                return (All if combinator == "all" else Any_)(tuple(parsed))  # type: ignore[arg-type]
        if "not" in keys:
            if keys != {"not"}:
                self.err(loc, "`not` 不能与其他键并列")
            child = self.cond(raw["not"], loc + ("not",), item_list)
            return Not(child) if child is not None else None
        if "count" in keys:
            return self.count(raw, loc, item_list)
        ref_key = "field" if item_list else "fact"
        if ref_key in keys:
            return self.compare(raw, loc, ref_key, item_list)
        wrong = "fact" if item_list else "field"
        if wrong in keys:
            hint = "在 count 的 where 中请用 `field:` 读取列表项字段" if item_list else "`field:` 只能用在 count 的 where 中"
            self.err(loc, hint)
            return None
        self.err(loc, f"无法识别的条件，键为 {sorted(map(str, keys))}；应为 all、any、not、{ref_key} 或 count")
        return None

    def _one_op(self, raw: dict, loc: Loc, allowed: tuple[str, ...], skip: set[str]) -> str | None:
        ops = [k for k in raw if k not in skip]
        bad = [k for k in ops if k not in allowed]
        if bad:
            self.err(loc, f"未知的运算符 {bad}；可用：{', '.join(allowed)}")
            return None
        if len(ops) != 1:
            self.err(loc, f"需要且只能有一个运算符（{', '.join(allowed)}），现在有 {len(ops)} 个")
            return None
        return ops[0]

    def compare(self, raw: dict, loc: Loc, ref_key: str, item_list: str | None) -> Compare | None:
        path = raw[ref_key]
        fdef: Fact | None
        if item_list:
            items = self.registry.lists[item_list].items
            fdef = items.get(path) if isinstance(path, str) else None
            if fdef is None:
                self.err(loc + (ref_key,), f"列表 {item_list} 的项没有字段 `{path}`；可用：{', '.join(items)}")
        else:
            fdef = self.registry.facts.get(path) if isinstance(path, str) else None
            if fdef is None:
                near = difflib.get_close_matches(str(path), list(self.registry.facts), n=1, cutoff=0.75)
                hint = f"，是否指 `{near[0]}`？" if near else "（见 docs/profile.md 的字段表）"
                self.err(loc + (ref_key,), f"未知的事实路径 `{path}`{hint}")
            elif fdef.scope not in ("enterprise", self.unit):
                item = self.registry.list_of(fdef.scope).item_label
                self.err(loc + (ref_key,), f"`{path}` 只能用于按{item}逐项判定（unit: {fdef.scope}）的事项")
                fdef = None
        op = self._one_op(raw, loc, COMPARE_OPS, {ref_key})
        if fdef is None or op is None:
            return None
        t = fdef.type
        if op in ("lt", "lte", "gt", "gte", "between") and not t.ordered:
            self.err(loc + (op,), f"`{path}` 是{t.describe()}，不能用 {op} 比较大小")
            return None
        rhs = raw[op]
        vloc = loc + (op,)
        if op in ("in", "not_in") and isinstance(rhs, dict) and set(rhs) == {"param"}:
            # a dated list of codes (e.g. the provinces of 西部地区): one parameter, many values
            if self.params.get(rhs["param"]) != "list":
                self.err(vloc, f"`{op}` 的参数 `{rhs['param']}` 必须是已定义的代码列表参数")
                return None
            if t.name not in ("string", "enum"):
                self.err(vloc, f"代码列表参数只能与文本或枚举事实比较，而该事实是{t.describe()}")
                return None
            values = (Param(rhs["param"]),)
        elif op in ("in", "not_in"):
            if not isinstance(rhs, list) or not rhs:
                self.err(vloc, f"`{op}` 需要一个非空列表或 {{param: 代码列表参数}}")
                return None
            values = tuple(self.value(v, vloc + (i,), t, fdef.scale) for i, v in enumerate(rhs))
        elif op == "between":
            if not isinstance(rhs, list) or len(rhs) != 2:
                self.err(vloc, "`between` 需要 [下限, 上限] 两个值（含端点）")
                return None
            values = tuple(self.value(v, vloc + (i,), t, fdef.scale) for i, v in enumerate(rhs))
        else:
            values = (self.value(rhs, vloc, t, fdef.scale),)
        if any(v is None for v in values):
            return None
        return Compare(fdef.path, op, values, t, item_list, fdef.scale)

    def count(self, raw: dict, loc: Loc, item_list: str | None) -> Count | None:
        if item_list:
            self.err(loc, "count 不能嵌套在另一个 count 的 where 中")
            return None
        spec = raw["count"]
        cloc = loc + ("count",)
        if not isinstance(spec, dict) or "list" not in spec:
            self.err(cloc, "count 需要 `list:`（violations 或 device_registrations）")
            return None
        extra = set(spec) - {"list", "where"}
        if extra:
            self.err(cloc, f"count 中的未知键 {sorted(extra)}")
        name = spec["list"]
        if name not in self.registry.lists:
            self.err(cloc + ("list",), f"未知的列表 `{name}`；可用：{', '.join(self.registry.lists)}")
            return None
        where = None
        if spec.get("where") is not None:
            where = self.cond(spec["where"], cloc + ("where",), item_list=name)
            if where is None:
                return None
        op = self._one_op(raw, loc, COUNT_OPS, {"count"})
        if op is None:
            return None
        value = self.value(raw[op], loc + (op,), FactType("int"))
        if value is None:
            return None
        return Count(name, where, op, value)

    def value(self, raw: Any, loc: Loc, t: FactType, scale: int = 1) -> Value | None:
        if isinstance(raw, dict):
            if set(raw) == {"param"}:
                name = raw["param"]
                if name not in self.params:
                    self.err(loc, f"未定义的参数 `{name}`（请在 parameters 中定义）")
                    return None
                if self.params[name] == "list":
                    self.err(loc, f"代码列表参数 `{name}` 只能用在 in 或 not_in 中")
                    return None
                if t.name not in ("int", "number"):
                    self.err(loc, f"参数只能与数值比较，而该事实是{t.describe()}")
                    return None
                return Param(name)
            if "as_of" in raw:
                return self.as_of(raw, loc, t)
            if "fact" in raw:
                return self.fact_date(raw, loc, t)
            if set(raw) == {"window"}:
                if t.name != "date":
                    self.err(loc, "窗口日期只能与日期比较")
                    return None
                if raw["window"] not in WINDOW_FIELDS:
                    self.err(loc, f"未知的窗口日期 `{raw['window']}`；可用：{', '.join(WINDOW_FIELDS)}")
                    return None
                return WindowDate(raw["window"])
            self.err(loc, f"无法识别的取值 {raw}；应为字面值、{{param: 名称}}、{{as_of: ...}}、{{fact: 日期事实, years: ...}} 或 {{window: ...}}")
            return None
        return self.literal(raw, loc, t, scale)

    def as_of(self, raw: dict, loc: Loc, t: FactType) -> AsOf | None:
        if t.name != "date":
            self.err(loc, f"评估日期只能与日期比较，而该事实是{t.describe()}")
            return None
        extra = set(raw) - {"as_of", "start_of", "end_of"}
        offs = raw["as_of"] or {}
        ok = True
        if extra:
            self.err(loc, f"as_of 取值中的未知键 {sorted(extra)}")
            ok = False
        if not isinstance(offs, dict) or set(offs) - {"years", "months", "days"} or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in offs.values()):
            self.err(loc + ("as_of",), "as_of 的偏移只能是 years/months/days 整数，例如 {months: -36}")
            ok = False
        for key in ("start_of", "end_of"):
            if raw.get(key) not in (None, "year", "month"):
                self.err(loc + (key,), f"{key} 只能是 year 或 month")
                ok = False
        if raw.get("start_of") and raw.get("end_of"):
            self.err(loc, "start_of 与 end_of 不能同时使用")
            ok = False
        if not ok:
            return None
        return AsOf(offs.get("years", 0), offs.get("months", 0), offs.get("days", 0),
                    raw.get("start_of"), raw.get("end_of"))

    def fact_date(self, raw: dict, loc: Loc, t: FactType) -> FactDate | None:
        if t.name != "date":
            self.err(loc, f"日期事实只能与日期比较，而该事实是{t.describe()}")
            return None
        path, offs = raw["fact"], {k: v for k, v in raw.items() if k != "fact"}
        fdef = self.registry.facts.get(path) if isinstance(path, str) else None
        if fdef is None or fdef.type.name != "date":
            self.err(loc + ("fact",), f"`{path}` 不是已登记的日期事实")
            return None
        if fdef.scope not in ("enterprise", self.unit):
            self.err(loc + ("fact",), f"`{path}` 只能用于按{self.registry.list_of(fdef.scope).item_label}逐项判定的事项")
            return None
        before = offs.pop("before", False)
        if not isinstance(before, bool):
            self.err(loc + ("before",), "before 只能是 true 或 false")
            return None
        years = offs.get("years", 0)
        if isinstance(years, dict) and set(years) == {"param"} and self.params.get(years["param"]) == "number":
            years = Param(years["param"])          # e.g. {param: lookback_years, before: true}
            offs = {k: v for k, v in offs.items() if k != "years"}
        if set(offs) - {"years", "months", "days"} or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in offs.values()):
            self.err(loc, "日期事实的偏移只能是 years/months/days 整数（years 也可为 {param: 年数参数}），"
                          "例如 {fact: case.act_on, years: -3}")
            return None
        return FactDate(path, years, offs.get("months", 0), offs.get("days", 0), -1 if before else 1)

    def literal(self, raw: Any, loc: Loc, t: FactType, scale: int = 1) -> Literal_ | None:
        ok = {
            "bool": isinstance(raw, bool),
            "int": isinstance(raw, int) and not isinstance(raw, bool),
            "number": isinstance(raw, (int, float)) and not isinstance(raw, bool),
            "date": isinstance(raw, date),
            "string": isinstance(raw, str),
            "enum": isinstance(raw, str) and raw in t.domain,
        }[t.name]
        if not ok:
            if t.name == "date" and isinstance(raw, str):
                self.err(loc, f"日期 `{raw}` 无效，应为 YYYY-MM-DD 的有效日期")
            else:
                self.err(loc, f"取值 `{raw}` 与事实类型不符：应为{t.describe()}")
            return None
        if t.name == "number" and not fits_scale(raw, scale):
            self.err(loc, f"取值 `{raw}` 的小数位数超过该事实的精度（{len(str(scale)) - 1} 位小数）")
            return None
        return Literal_(raw)


def fits_scale(v: Any, scale: int) -> bool:
    """A number is exact in the engine's fixed point (value × scale is a whole number)."""
    return abs(v * scale - round(v * scale)) < 1e-6


def parse_condition(raw: Any, loc: Loc, params: dict[str, str], unit: str,
                    registry: FieldRegistry) -> tuple[Cond | None, list[ParseProblem]]:
    p = _Parser(params, unit, registry)
    c = p.cond(raw, loc)
    return (c if not p.problems else None), p.problems


def fact_paths(c: Cond) -> list[str]:
    """Catalogue paths (and list names) a condition reads, in order, without duplicates."""
    seen: dict[str, None] = {}
    for leaf in leaves(c):
        seen[leaf.path if isinstance(leaf, Compare) else leaf.list] = None
        for v in getattr(leaf, "values", ()):
            if isinstance(v, FactDate):
                seen[v.path] = None
    return list(seen)


def anchor_of(c: Count) -> str | None:
    """The date fact a count's `where` is measured from, if any (the subject's act date...)."""
    if c.where is None:
        return None
    for leaf in leaves(c.where):
        for v in getattr(leaf, "values", ()):
            if isinstance(v, FactDate):
                return v.path
    return None
