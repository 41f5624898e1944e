"""A window's support amounts as staff read and set them: each grant's amount table (a lookup
parameter of the rules), its cells named in words (经创新医疗器械特别审查程序：否；来源：自主研发；
管理类别：第二类), the rules' reference amount in force on the window's 判定日期 and the amount
the round's notice set for this window (store.windows.set_amounts), and the console's form
read back into the override the rules take."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from engine.registry import FieldSpec
from store import rulesets
from store.errors import RowProblem
from store.intake import CellError, read_value

# an amount as staff write it ("30万", "300,000")
AMOUNT = FieldSpec(id="amount_cny", label="支持金额", type="number", unit="元", decimals=2, min=0, max=10 ** 9)
FIELD = "amount:"       # the form's fields: amount:<parameter>:<key>|<key>|…


@dataclass(frozen=True)
class AmountCell:
    field: str                  # the form field
    words: str                  # the cell's keys in words
    keys: tuple[str, ...]       # as the rule file writes them
    reference: Any              # the rules' amount (元) on the window's 判定日期
    set_to: Optional[Any]       # the window's own amount, if one is set


@dataclass(frozen=True)
class AmountTable:
    param: str
    title: str                  # the benefit's
    description: str
    provisional: bool           # the reference amounts are 参考金额 (no official value)
    note: str                   # where the reference amounts come from
    cells: list[AmountCell]

    @property
    def set(self) -> bool:
        return any(c.set_to is not None for c in self.cells)


def tables(amounts: Mapping[str, Any], as_of) -> list[AmountTable]:
    """Every grant's amount table for a window with these overrides and 判定日期."""
    ev = rulesets.current()
    registry, out, seen = ev.registry, [], set()
    for b in ev.book.benefits.values():
        if b.spec.kind != "grant":
            continue
        for spec in b.spec.amount_specs():
            if spec.lookup is None or spec.lookup.param in seen:
                continue
            name, keys = spec.lookup.param, spec.lookup.keys
            seen.add(name)
            pv = b.param(name, as_of)
            if pv is None or not isinstance(pv.value, dict):
                continue
            own = amounts.get(f"{b.id}.{name}", amounts.get(name))
            cells = [AmountCell(FIELD + name + ":" + "|".join(path), _words(registry, keys, path), path, value,
                                _at(own, path))
                     for path, value in _leaves(pv.value)]
            out.append(AmountTable(name, b.spec.title, b.spec.parameters[name].description, pv.provisional,
                                   pv.reference.note or "", cells))
    return out


def read_form(form: Mapping[str, Any], amounts: Mapping[str, Any], as_of) -> tuple[dict, list[RowProblem]]:
    """The window's overrides from the console's form: every cell of every table, each amount
    read as staff write it; (overrides, problems), every problem at once."""
    out, problems = {}, []
    for t in tables(amounts, as_of):
        table: dict = {}
        for c in t.cells:
            raw = str(form.get(c.field) or "").strip()
            if not raw:
                problems.append(RowProblem("请填写金额（元）", path=c.field))
                continue
            if "e" in raw.lower():          # 1e3: a spelling no notice uses, most likely a slip
                problems.append(RowProblem(f"请写成如 300000 或 30万，不能是“{raw[:20]}”", path=c.field))
                continue
            try:
                value = read_value(AMOUNT, raw)
            except CellError as e:
                problems.append(RowProblem(str(e), path=c.field))
                continue
            if value < 0:
                problems.append(RowProblem(f"金额不能为负数（“{raw[:20]}”）", path=c.field))
                continue
            node = table
            for k in c.keys[:-1]:
                node = node.setdefault(k, {})
            node[c.keys[-1]] = int(value) if float(value).is_integer() else value
        out[t.param] = table
    return out, problems


def labels(amounts: Mapping[str, Any], as_of) -> dict[str, str]:
    """Form field → the cell in words (for the problems' labels)."""
    ts = tables(amounts, as_of)
    return {c.field: f"{t.title}：{c.words}" if len(ts) > 1 else c.words for t in ts for c in t.cells}


def _leaves(table: dict, path: tuple[str, ...] = ()):
    for k, v in table.items():
        if isinstance(v, dict):
            yield from _leaves(v, (*path, str(k)))
        else:
            yield (*path, str(k)), v


def _at(table: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(table, dict) or k not in table:
            return None
        table = table[k]
    return table


def _words(registry, keys: list[str], path: tuple[str, ...]) -> str:
    said = []
    for fact, key in zip(keys, path):
        f = registry.facts.get(fact)
        value: Any = {"true": True, "false": False}.get(key, key) if f is not None and f.type.name == "bool" else key
        said.append(f"{f.label}：{registry.value_text(fact, value)}" if f is not None else key)
    return "；".join(said)
