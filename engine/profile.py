"""The enterprise profile: a pydantic model built from the field registry (rules/fields.yaml).

None (or an absent key) means *unknown*; ``[]``, ``false`` and ``0`` are real values. Typing
is strict in the JSON sense: numbers must be numbers, booleans booleans, dates ``YYYY-MM-DD``
strings. Every number is bounded and carries at most its declared decimals, every text is
bounded and free of NUL characters, and a key the registry does not know is an error that
names the closest known key.

Use :func:`parse_profile` for user input: it reports every problem at once, each with a
profile path (``device_registrations[0].obtained_on``) and a Chinese message.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, Optional, Union
from zoneinfo import ZoneInfo

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator,
                      Field, Tag, ValidationError, ValidationInfo, create_model, field_validator)
from pydantic_core import PydanticCustomError

from engine.formats import FORMATS, ITEM_CHECKS, FormatError
from engine.messages import kind_of, not_a_number, num_text, pydantic_message
from engine.registry import FieldRegistry, FieldSpec
from engine.vocabulary import cn_date, money_short, percent

CONTEXT_TODAY = "today"     # validation-context key holding the reference date
EARLIEST_DATE = date(1900, 1, 1)
_TZ = ZoneInfo("Asia/Shanghai")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_OBJECT, _FALSE = "object", "false"       # union tags, dropped from error paths


def shanghai_today() -> date:
    return datetime.now(_TZ).date()


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Profile(BaseModel):
    """Base of every generated profile model."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False,
                              str_strip_whitespace=True, frozen=True)

    def as_json(self) -> dict:
        """The profile as JSON data, unknown facts left out (null and absent mean the same)."""
        return self.model_dump(mode="json", exclude_none=True)

    def profile_hash(self) -> str:
        """sha256 of the canonical JSON: the identity of a profile in decisions and snapshots."""
        return hashlib.sha256(canonical_json(self.as_json()).encode()).hexdigest()


class _Item(BaseModel):
    model_config = Profile.model_config


# --- field checks ------------------------------------------------------------------------------
def _today(info: ValidationInfo) -> date:
    ctx = info.context
    if isinstance(ctx, dict) and isinstance(ctx.get(CONTEXT_TODAY), date):
        return ctx[CONTEXT_TODAY]
    return shanghai_today()


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise PydanticCustomError("yagu_nul", "不能包含空字符（\\u0000）")
    return v


def _format(name: str):
    check = FORMATS[name]

    def run(v: str) -> str:
        try:
            return check(v)
        except FormatError as e:
            raise PydanticCustomError("yagu_format", str(e)) from None
    return run


def _date_check(spec: FieldSpec):
    def parse(v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return v
        if isinstance(v, datetime):
            raise PydanticCustomError("yagu_date", "必须是日期（YYYY-MM-DD），不能带时间")
        if not isinstance(v, date):
            if not isinstance(v, str) or not _ISO_DATE.match(v.strip()):
                raise PydanticCustomError("yagu_date", "必须是 YYYY-MM-DD 格式的日期（例如 2025-10-15）")
            try:
                v = date.fromisoformat(v.strip())
            except ValueError:
                raise PydanticCustomError("yagu_date", "不是有效的日期：{value}", {"value": v.strip()}) from None
        if v < EARLIEST_DATE:
            raise PydanticCustomError("yagu_date", "日期不能早于 1900年1月1日")
        today = _today(info)
        if spec.past and v > today:
            raise PydanticCustomError("yagu_future_date", "日期不能晚于今天（{today}）",
                                      {"today": cn_date(today)})
        return v
    return parse


def range_problem(spec: FieldSpec, v: Any) -> str | None:
    """The message for a number outside its field's bounds (the same words wherever it came in)."""
    text = _bound_text_for(spec)
    if spec.min is not None and v < spec.min:
        return f"不能小于 {text(spec.min)}"
    if spec.max is not None and v > spec.max:
        return f"不能大于 {text(spec.max)}{_as_percent_hint(spec, v)}"
    return None


def _as_percent_hint(spec: FieldSpec, v: Any) -> str:
    """A share typed as a percentage without its sign (60 for 60%) is told how to write it. A
    share above 1 that is not a whole number is most often a percentage above 100% (150% read
    as 1.5): told "write 1.5% or 0.015" it was only confused."""
    if spec.unit == "比例" and 1 < v <= 100 and v == int(v):
        return f"；占比请写成 {num_text(v)}% 或 {num_text(Decimal(str(v)) / 100)}"
    return ""


def _bound_text_for(spec: FieldSpec):
    """A bound as its field's readers write it: 1（即 100%）, 10万亿元, 10,000,000人."""
    def text(x: Any) -> str:
        if spec.unit == "比例":
            return f"{num_text(x)}（即 {percent(x)}）"
        if spec.unit == "元":
            return money_short(x)
        return f"{x:,}{spec.unit or ''}" if isinstance(x, int) and abs(x) >= 10000 else f"{num_text(x)}{spec.unit or ''}"
    return text


def _number_check(spec: FieldSpec):
    """Type, finiteness, bounds and decimals of a number, with one message per problem: no
    value outside the field's domain, and no spelling the rule engine could mishandle."""
    lo, hi, places = spec.min, spec.max, spec.decimals
    whole = spec.type == "int" or places == 0
    bound_text = _bound_text_for(spec)

    def check(v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PydanticCustomError("yagu_number", "{said}", {"said": not_a_number("整数" if whole else "数字", v)})
        if isinstance(v, float) and not math.isfinite(v):
            raise PydanticCustomError("yagu_number", "必须是有限的数字")
        # one message for every way in (API, form, import, rule-file example)
        if v < lo:  # type: ignore[operator]
            raise PydanticCustomError("yagu_number", "不能小于 {lo}", {"lo": bound_text(lo)})
        if v > hi:  # type: ignore[operator]
            raise PydanticCustomError("yagu_number", "不能大于 {hi}{hint}",
                                      {"hi": bound_text(hi), "hint": _as_percent_hint(spec, v)})
        if whole:
            if isinstance(v, float):
                raise PydanticCustomError("yagu_number", "必须是整数，不能带小数点")
            return v
        # repr gives the shortest decimal that round-trips, i.e. what the JSON text said
        if isinstance(v, float) and Decimal(repr(v)).as_tuple().exponent < -places:  # type: ignore[operator]
            unit = "金额" if spec.unit == "元" else "该数值"
            raise PydanticCustomError("yagu_number", "{unit}最多保留{places}位小数",
                                      {"unit": unit, "places": "零一两三四五六"[places]})
        return v
    return check


def _annotation(spec: FieldSpec, registry: FieldRegistry) -> Any:
    t = spec.type
    meta = {"description": spec.label + (f"（{spec.help}）" if spec.help else "")}
    if t == "string":
        checks = [AfterValidator(_no_nul)] + ([AfterValidator(_format(spec.format))] if spec.format else [])
        return Annotated[str, Field(min_length=1 if spec.required else 0, max_length=spec.max_length,
                                    **meta), *checks]
    if t == "bool":
        return Annotated[bool, Field(**meta)]
    if t in ("int", "number"):
        base = int if t == "int" or spec.decimals == 0 else Union[int, float]
        return Annotated[base, BeforeValidator(_number_check(spec)),
                         Field(ge=spec.min, le=spec.max, **meta)]
    if t == "date":
        return Annotated[date, BeforeValidator(_date_check(spec)), Field(**meta)]
    if t == "enum":
        return Annotated[Literal[tuple(spec.values)], Field(**meta)]  # type: ignore[misc]
    if t == "object":
        model = _model(spec, registry, _Item)
        if spec.false_means is None:
            return Annotated[model, Field(**meta)]
        return Annotated[
            Union[Annotated[model, Tag(_OBJECT)], Annotated[Literal[False], Tag(_FALSE)]],
            Discriminator(_object_tag, custom_error_type="yagu_object",
                          custom_error_message=f"必须是对象、false（{spec.false_means}）或 null（未知）"),
            Field(**meta)]
    if t == "list":
        checks = [AfterValidator(_unique(spec.key))] if spec.key else []
        return Annotated[list[_model(spec, registry, _Item)], Field(max_length=spec.max_items, **meta),
                         *checks]
    raise AssertionError(t)


def _unique(key: str):
    """Items are identified by their key (parse_profile reports each repeat with its path;
    this keeps the model itself from ever holding two)."""
    def check(items: list) -> list:
        keys = [getattr(i, key) for i in items]
        if len(set(keys)) != len(keys):
            raise PydanticCustomError("yagu_duplicate", "列表中有重复的编号")
        return items
    return check


def _object_tag(v: Any) -> str | None:
    if v is False:
        return _FALSE
    if isinstance(v, (dict, BaseModel)):
        return _OBJECT
    return None


def _model(spec: FieldSpec | None, registry: FieldRegistry, base: type[BaseModel]) -> type[BaseModel]:
    specs = spec.fields if spec is not None else registry.entered_fields()
    fields: dict[str, Any] = {}
    for s in specs:
        ann = _annotation(s, registry)
        fields[s.id] = (ann, ...) if s.required else (Optional[ann], None)
    validators = {}
    for s in specs:
        check = ITEM_CHECKS.get(s.derive or "")
        if check is not None:
            validators[f"_check_{s.id}"] = field_validator(s.id)(_item_check(check, s.id))
        if s.not_before is not None:
            earlier = next(e for e in specs if e.id == s.not_before)
            validators[f"_order_{s.id}"] = field_validator(s.id)(_not_before(earlier))
    name = "Profile" if spec is None else "".join(p.title() for p in spec.id.split("_"))
    return create_model(name, __base__=base, __validators__=validators, **fields)


def _item_check(check, field: str):
    def run(cls, v, info: ValidationInfo):
        if v is None:
            return v
        probe = type("Item", (), {**info.data, field: v})   # the item as validated so far
        problem = check(probe)
        if problem:
            raise PydanticCustomError("yagu_item_check", problem)
        return v
    return classmethod(run)


def _not_before(earlier: FieldSpec):
    """A date that cannot precede an earlier one of the same item (validated before it)."""
    def run(cls, v, info: ValidationInfo):
        first = info.data.get(earlier.id)
        if isinstance(v, date) and isinstance(first, date) and v < first:
            raise PydanticCustomError("yagu_date_order", "不能早于“{label}”（{first}）",
                                      {"label": earlier.label, "first": cn_date(first)})
        return v
    return classmethod(run)


@cache
def profile_model(registry: FieldRegistry) -> type[Profile]:
    """The pydantic Profile model of a registry (built once per registry)."""
    return _model(None, registry, Profile)  # type: ignore[return-value]


# --- errors ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    path: str       # profile path, e.g. device_registrations[0].obtained_on; "" = the whole profile
    message: str    # Chinese


class ProfileError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("企业画像有 {} 处问题：\n{}".format(
            len(problems), "\n".join(f"{p.path or '（根）'}：{p.message}" for p in problems)))


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (_OBJECT, _FALSE):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _container(loc: tuple) -> str | None:
    """The registry field holding the key at `loc` (None = the profile's top level)."""
    names = [p for p in loc[:-1] if isinstance(p, str) and p not in (_OBJECT, _FALSE)]
    return names[0] if names else None


def _unknown_key(loc: tuple, registry: FieldRegistry) -> str:
    key = str(loc[-1])
    close = difflib.get_close_matches(key, registry.known_keys(_container(loc)), n=1, cutoff=0.6)
    hint = f"（是否指“{close[0]}”？）" if close else ""
    return f"本系统不认识的字段“{key[:40]}”{hint}"


def _duplicates(data: dict, registry: FieldRegistry) -> list[Problem]:
    """Repeated item keys (e.g. certificate numbers), checked on the raw input so they are
    reported even when other items fail."""
    out = []
    for info in registry.lists.values():
        items, key = data.get(info.name), info.spec.key
        if not key or not isinstance(items, list):
            continue
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str):
                continue
            value = value.strip()
            if value in first:
                out.append(Problem(f"{info.name}[{i}].{key}",
                                   f"{info.items[key].label} {value[:40]} 与第{first[value] + 1}项重复"))
            else:
                first[value] = i
    return out


def parse_profile(data: Any, registry: FieldRegistry, today: date | None = None) -> Profile:
    """Validate user input into a Profile, or raise ProfileError listing every problem."""
    model = profile_model(registry)
    if isinstance(data, BaseModel):     # re-checked: against this registry and this date
        data = data.model_dump(mode="json", exclude_none=True)
    if not isinstance(data, dict):
        raise ProfileError([Problem("", f"企业画像必须是 JSON 对象，不能是{kind_of(data)}")])
    problems = _duplicates(data, registry)
    try:
        profile = model.model_validate(data, context={CONTEXT_TODAY: today or shanghai_today()})
    except ValidationError as e:
        for err in e.errors():
            if err["type"] == "yagu_duplicate":
                continue            # reported per item by _duplicates
            message = (_unknown_key(err["loc"], registry) if err["type"] == "extra_forbidden"
                       else pydantic_message(err))
            if err["type"] == "literal_error":      # the codes a JSON file needs, with their meaning
                spec = registry.field_at(_path(err["loc"]))
                if spec is not None and spec.values:
                    head = message.split("应为以下之一：")[0]
                    message = head + "应为以下之一：" + "、".join(f"{k}（{v}）" for k, v in spec.values.items())
            problems.append(Problem(_path(err["loc"]), message))
        profile = None
    if problems:
        order = {name: i for i, name in enumerate(model.model_fields)}

        def position(p: Problem) -> tuple:
            m = re.match(r"^([a-z0-9_]*)(?:\[(\d+)\])?", p.path)
            return (order.get(m.group(1), len(order)), int(m.group(2)) if m.group(2) else -1)
        raise ProfileError(sorted(problems, key=position))
    assert profile is not None
    return profile
