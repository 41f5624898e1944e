"""The profile form of the web pages, derived from the field registry, and its parsing.

Presentation only: validation is the engine's. Empty inputs mean *unknown* and are left out.
Numbers are read as people write them ("4,200万", "4200万元", "92%"); text that does not
read as a number is passed through, so the engine's validator names the field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from engine.registry import FieldRegistry, FieldSpec

_NUMBER = re.compile(r"^([+-]?\d[\d,，]*(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(亿|万)?\s*(元|%|％)?$")


def parse_number(raw: str, unit: Optional[str]) -> Any:
    """'4,200万' → 42000000, '92%' → 0.92 (for 比例), '300.25' → 300.25, '1e-05' → 1e-05; else
    the text."""
    text = raw.strip()
    m = _NUMBER.match(text)
    if not m:
        return text
    try:
        value = Decimal(m.group(1).replace(",", "").replace("，", ""))
    except InvalidOperation:
        return text
    scale, suffix = m.group(2), m.group(3)
    if scale == "亿":
        value *= 100_000_000
    elif scale == "万":
        value *= 10_000
    if suffix in ("%", "％"):
        if unit != "比例":
            return text
        value /= 100
    value = value.normalize()
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Widget:
    """One input of the form: name, label, kind (text, number, date, select, yesno), choices."""
    name: str
    label: str
    kind: str
    help: str = ""
    unit: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False


def widget(spec: FieldSpec, name: str) -> Widget:
    if spec.type == "bool":
        return Widget(name, spec.label, "yesno", spec.help or "")
    if spec.values:
        return Widget(name, spec.label, "select", spec.help or "", choices=tuple((str(k), v) for k, v in spec.values.items()))
    if spec.type == "date":
        return Widget(name, spec.label, "date", spec.help or "")
    if spec.type in ("int", "number"):
        hint = {"元": "元，可写“4,200万”", "比例": "可写 92% 或 0.92", "人": "人"}.get(spec.unit or "", spec.unit or "")
        return Widget(name, spec.label, "number", spec.help or "", unit=hint)
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


def value_of(spec: FieldSpec, raw: str) -> Any:
    raw = (raw or "").strip()
    if raw == "":
        return None
    if spec.type == "bool":
        return {"yes": True, "no": False}.get(raw, raw)
    if spec.type == "int" and spec.values:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if spec.type in ("int", "number"):
        return parse_number(raw, spec.unit)
    return raw


def profile_from_form(form: Any, registry: FieldRegistry) -> dict:
    """The profile a submitted form states (unknown facts left out)."""
    profile: dict[str, Any] = {}
    for spec in registry.entered_fields():
        if spec.type == "object":
            state = form.get(f"{spec.id}.state", "")
            if state == "none":
                profile[spec.id] = False
            elif state == "held":
                obj = {s.id: value_of(s, form.get(f"{spec.id}.{s.id}", "")) for s in spec.fields}
                profile[spec.id] = {k: v for k, v in obj.items() if v is not None}
        elif spec.type == "list":
            if form.get(f"{spec.id}.known") != "yes":
                continue
            cols = {s.id: form.getlist(f"{spec.id}.{s.id}") for s in spec.fields if s.entered}
            n = max((len(v) for v in cols.values()), default=0)
            items = []
            for i in range(n):
                item = {}
                for s in spec.fields:
                    if s.id in cols and i < len(cols[s.id]):
                        v = value_of(s, cols[s.id][i])
                        if v is not None:
                            item[s.id] = v
                if item:
                    items.append(item)
            profile[spec.id] = items
        else:
            v = value_of(spec, form.get(spec.id, ""))
            if v is not None:
                profile[spec.id] = v
    return profile


def form_values(profile: dict, registry: FieldRegistry) -> dict:
    """The inputs' current values (strings) for re-displaying a profile in the form."""
    out: dict[str, Any] = {}
    for spec in registry.entered_fields():
        v = profile.get(spec.id)
        if spec.type == "object":
            out[f"{spec.id}.state"] = "none" if v is False else "held" if isinstance(v, dict) else ""
            for s in spec.fields:
                out[f"{spec.id}.{s.id}"] = _text((v or {}).get(s.id) if isinstance(v, dict) else None)
        elif spec.type == "list":
            out[f"{spec.id}.known"] = "no" if v is None and profile else "yes"
            out[spec.id] = [{f"{spec.id}.{s.id}": _text(it.get(s.id)) for s in spec.fields}
                            for it in (v or []) if isinstance(it, dict)]
        else:
            out[spec.id] = _text(v)
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)
