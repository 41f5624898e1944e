"""The profile form of the web pages, derived from the field registry, and its reading.

Empty inputs mean *unknown* and are left out. Numbers are read as people write them
("4,200万", "4200万元", "92%") by the import's cell reader, so the form and the spreadsheet
accept the same spellings; an input that does not read as its field's value, or lies outside
its field's range, gets a plain message here, and everything else is the engine's validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import vocabulary as vocab
from engine.registry import FieldRegistry, FieldSpec
from store.intake import CellError, read_value


@dataclass
class Widget:
    """One input of the form: name, label, kind (text, number, date, select, yesno, list),
    choices; a list's inputs for one item (`item`, named by field id) and its item's name."""
    name: str
    label: str
    kind: str
    help: str = ""
    unit: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    item: tuple["Widget", ...] = ()
    item_label: str = ""
    whole: bool = False         # a count (人, 个月): the phone's number pad, without a decimal point


UNIT_HINT = {"元": "元，可写 4,200万 或 4200万元", "比例": "可写 92% 或 0.92", "人": "人", "月": "个月"}


def widget(spec: FieldSpec, name: str) -> Widget:
    if spec.type == "list":
        return Widget(name, spec.label, "list", spec.help or "", item_label=spec.item_label or "记录",
                      item=tuple(widget(s, s.id) for s in spec.fields if s.entered))
    if spec.type == "bool":
        return Widget(name, spec.label, "yesno", spec.help or "")
    if spec.values:
        return Widget(name, spec.label, "select", spec.help or "", choices=tuple((str(k), v) for k, v in spec.values.items()))
    if spec.type == "date":
        return Widget(name, spec.label, "date", spec.help or "")
    if spec.type in ("int", "number"):
        return Widget(name, spec.label, "number", spec.help or "", unit=UNIT_HINT.get(spec.unit or "", spec.unit or ""),
                      whole=spec.type == "int" and spec.unit != "元")
    return Widget(name, spec.label, "text", spec.help or "", required=spec.required)


@dataclass
class Form:
    """The registry's inputs: top-level fields, objects (a held/not-held choice plus their
    fields) and lists (repeatable groups, each with a known/unknown choice)."""
    fields: list[Widget]
    objects: list[tuple[FieldSpec, list[Widget]]]
    lists: list[tuple[FieldSpec, list[Widget]]]


def form_of(registry: FieldRegistry) -> Form:
    fields, objects, lists = [], [], []
    for spec in registry.entered_fields():
        if spec.type == "object":
            objects.append((spec, [widget(s, f"{spec.id}.{s.id}") for s in spec.fields]))
        elif spec.type == "list":
            lists.append((spec, [widget(s, f"{spec.id}.{s.id}") for s in spec.fields if s.entered]))
        else:
            fields.append(widget(spec, spec.id))
    return Form(fields, objects, lists)


class InputError(ValueError):
    """An input that does not read as its field's value (message in plain Chinese)."""


def value_of(spec: FieldSpec, raw: str) -> Any:
    """The value an input states (None when empty); InputError when it states none."""
    raw = (raw or "").strip()
    if raw == "":
        return None
    if spec.type == "bool":
        return {"yes": True, "no": False}.get(raw, raw)
    if spec.type not in ("int", "number"):
        return raw                 # text, dates and choices: the engine names what is wrong
    try:
        value = read_value(spec, raw)
    except CellError as e:
        raise InputError(str(e)) from None
    return value               # out of range: the profile's validation says so, as for the API


@dataclass
class Reading:
    """What a submitted form states: the profile (unknown facts left out), the problems of
    inputs that state no value ({path, message}) and their text as typed (by input name)."""
    profile: dict
    problems: list[dict] = field(default_factory=list)
    typed: dict[str, str] = field(default_factory=dict)


class _WithoutItem:
    """A submitted form without one list item's inputs: what 删除此项 sends back (the page
    works without scripts, so a row is removed by a round trip, like 增加一项)."""

    def __init__(self, form: Any, list_id: str, index: int):
        self.form, self.prefix, self.index = form, f"{list_id}.", index

    def get(self, key: str, default: Any = None) -> Any:
        return self.form.get(key, default)

    def getlist(self, key: str) -> list:
        values = list(self.form.getlist(key))
        if key.startswith(self.prefix) and self.index < len(values):
            del values[self.index]
        return values


def read_form(form: Any, registry: FieldRegistry, action: str = "") -> Reading:
    """The form as submitted; `action` "remove:<list>:<n>" leaves out that list's item n."""
    if action.startswith("remove:"):
        list_id, _, n = action[7:].partition(":")
        spec = registry.field_at(list_id)
        if n.isdigit() and spec is not None and spec.type == "list":
            form = _WithoutItem(form, list_id, int(n))
    out = Reading({})

    def read(spec: FieldSpec, name: str, path: str, raw: Any) -> Any:
        try:
            value = value_of(spec, str(raw or ""))
        except InputError as e:
            out.problems.append({"path": path, "message": str(e)})
            out.typed[name] = str(raw)
            return None
        if value is not None and spec.type in ("int", "number") and name == path:
            out.typed[name] = str(raw).strip()      # shown again as typed ("1.2亿", "60"), not as read
        return value

    for spec in registry.entered_fields():
        if spec.type == "object":
            state = form.get(f"{spec.id}.state", "")
            if state == "none":
                out.profile[spec.id] = False
            elif state == "held":
                obj = {s.id: read(s, f"{spec.id}.{s.id}", f"{spec.id}.{s.id}", form.get(f"{spec.id}.{s.id}"))
                       for s in spec.fields}
                out.profile[spec.id] = {k: v for k, v in obj.items() if v is not None}
        elif spec.type == "list":
            if form.get(f"{spec.id}.known") != "yes":
                continue
            out.profile[spec.id] = read_items(spec, form, spec.id, spec.id, read)
        else:
            v = read(spec, spec.id, spec.id, form.get(spec.id))
            if v is not None:
                out.profile[spec.id] = v
    return out


def read_items(spec: FieldSpec, form: Any, name: str, path: str, read) -> list[dict]:
    """A list's items as its repeated inputs (`name`.field, one per item) state them; items
    left empty are no items. `read(spec, input name, path, raw)` reads one input."""
    cols = {s.id: form.getlist(f"{name}.{s.id}") for s in spec.fields if s.entered}
    items: list[dict] = []
    for i in range(max((len(v) for v in cols.values()), default=0)):
        item = {}
        for s in spec.fields:
            if s.id in cols and i < len(cols[s.id]):
                v = read(s, f"{name}.{s.id}", f"{path}[{len(items)}].{s.id}", cols[s.id][i])
                if v is not None:
                    item[s.id] = v
        if item:
            items.append(item)
    return items


def form_values(profile: dict, registry: FieldRegistry, typed: dict[str, str] | None = None) -> dict:
    """The inputs' current values (strings) for re-displaying a profile in the form; inputs
    that stated no value show what was typed."""
    out: dict[str, Any] = {}
    for spec in registry.entered_fields():
        v = profile.get(spec.id)
        if spec.type == "object":
            out[f"{spec.id}.state"] = "none" if v is False else "held" if isinstance(v, dict) else ""
            for s in spec.fields:
                out[f"{spec.id}.{s.id}"] = _text((v or {}).get(s.id) if isinstance(v, dict) else None, s)
        elif spec.type == "list":
            out[f"{spec.id}.known"] = "no" if v is None and profile else "yes"
            out[spec.id] = [{f"{spec.id}.{s.id}": _text(it.get(s.id), s) for s in spec.fields}
                            for it in (v or []) if isinstance(it, dict)]
        else:
            out[spec.id] = _text(v, spec)
    out.update(typed or {})
    return out


def _text(v: Any, spec: FieldSpec | None = None) -> str:
    if v is None:
        return ""
    if v is True:
        return "yes"
    if v is False:
        return "no"
    if spec is not None and spec.unit == "比例" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return vocab.percent(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
