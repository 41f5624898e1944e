"""The field registry (rules/fields.yaml): one declaration per profile fact.

From it come the fact catalogue that rule conditions read (`FieldRegistry.facts`), the lists
and subjects (`lists`, `subjects`), every Chinese label and value label a reader sees
(`label`, `value_text`), and the inputs of the web form and the import template
(`FieldSpec.column`, `synonyms`, `help`, `example`). The pydantic `Profile` model is built from
it in `engine.profile`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from operator import attrgetter
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine import vocabulary as vocab
from engine.formats import DERIVATIONS, FORMATS
from engine.messages import pydantic_message
from engine.yamlsource import SourceDoc, load_yaml

FieldKind = Literal["string", "bool", "int", "number", "date", "enum", "object", "list"]
ID = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"
UNITS = ("元", "人", "比例", "月", "年", "个")
AWARD_LEDGER = "award_ledger"


class FieldSpec(BaseModel):
    """One entry of rules/fields.yaml (see the file's header for the meaning of each key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=ID)
    label: str = Field(min_length=1)
    type: FieldKind
    unit: str | None = None
    decimals: int = Field(0, ge=0, le=6)
    min: int | float | None = None
    max: int | float | None = None
    max_length: int | None = Field(None, ge=1, le=10000)
    values: dict[str | int, str] = {}
    value_synonyms: dict[str, list[str]] = {}
    format: str | None = None
    past: bool = False
    not_before: str | None = None           # date: an earlier date of the same item or profile
    required: bool = False
    help: str | None = None
    column: str | None = None
    synonyms: list[str] = []
    example: Any = None
    derive: str | None = None
    from_: str | None = Field(None, alias="from")
    fields: list["FieldSpec"] = []
    derived: list["FieldSpec"] = []
    false_means: str | None = None          # object: `false` is a real value (e.g. 未持有)
    subject: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")   # list: unit of benefits
    claimable: bool = False                 # list: an application names which items it applies for
    item_label: str | None = None
    key: str | None = None                  # list: the field that identifies an item
    max_items: int | None = Field(None, ge=1, le=100000)
    sheet: str | None = None                # list: its sheet in the import workbook
    csv_prefix: str = ""                    # list: header prefix of its columns in a CSV import

    @model_validator(mode="after")
    def _consistent(self) -> "FieldSpec":
        t = self.type
        if t in ("int", "number") and (self.min is None or self.max is None):
            raise ValueError(f"数值字段 {self.id} 必须有 min 和 max")
        if t == "number" and self.unit not in (None, *UNITS):
            raise ValueError(f"未知的单位 {self.unit}；可用：{'、'.join(UNITS)}")
        if t == "int" and self.decimals:
            raise ValueError("int 字段不能有小数位（用 type: number）")
        if t == "enum" and not self.values:
            raise ValueError(f"枚举字段 {self.id} 必须有 values")
        if t == "string" and self.max_length is None and self.derive is None:
            raise ValueError(f"文本字段 {self.id} 必须有 max_length")
        if t in ("object", "list") and not self.fields:
            raise ValueError(f"{self.id} 必须有 fields")
        if t == "list" and self.max_items is None:
            raise ValueError(f"列表 {self.id} 必须有 max_items")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"未知的 format `{self.format}`；可用：{'、'.join(FORMATS)}")
        if self.derive is not None and self.derive not in DERIVATIONS:
            raise ValueError(f"未知的 derive `{self.derive}`；可用：{'、'.join(DERIVATIONS)}")
        for value in self.value_synonyms:
            if value not in self.values:
                raise ValueError(f"value_synonyms 中的 `{value}` 不是 values 的取值")
        if self.key is not None and self.key not in {f.id for f in self.fields}:
            raise ValueError(f"key `{self.key}` 不是列表项的字段")
        return self

    @property
    def entered(self) -> bool:
        """Entered by the enterprise (not derived from other facts)."""
        return self.derive is None or self.from_ is None

    def value_label(self, value: Any) -> str | None:
        if value in self.values:
            return self.values[value]
        return self.values.get(str(value)) if isinstance(value, int) else None


@dataclass(frozen=True)
class FactType:
    name: Literal["bool", "int", "number", "date", "string", "enum"]
    domain: tuple[str, ...] = ()

    @property
    def ordered(self) -> bool:
        return self.name in ("int", "number", "date")

    def describe(self) -> str:
        return {"bool": "布尔值", "int": "整数", "number": "数值", "date": "日期", "string": "文本",
                "enum": "枚举（" + "、".join(self.domain) + "）"}[self.name]


@dataclass(frozen=True)
class Fact:
    """A path a rule condition may read, resolved against its owner: the profile for
    enterprise facts, a list item for subject and item facts."""
    path: str                        # in_park, hnte_certificate.issued_on, certificate.origin, kind
    spec: FieldSpec
    type: FactType
    scope: str                       # "enterprise", a subject name, or "item"
    read: Callable[[Any], Any]       # owner → value (None = unknown)
    ask: Callable[[Any], str]        # owner → the input to supply when the value is unknown
    scale: int = 1                   # numbers are handed to the engine as value × scale
    attr: str | None = None          # the owner's attribute it is read from as is (not derived)

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass(frozen=True)
class ListInfo:
    name: str
    spec: FieldSpec
    items: dict[str, Fact]           # item field → fact (what `count` conditions read)

    @property
    def subject(self) -> str | None:
        return self.spec.subject

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def item_label(self) -> str:
        return self.spec.item_label or self.spec.label

    def key_of(self, item: Any) -> str:
        return str(getattr(item, self.spec.key)) if self.spec.key else ""


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: list[FieldSpec] = Field(min_length=1)
    derived: list[FieldSpec] = []


def _fact_type(spec: FieldSpec) -> FactType:
    if spec.type == "enum":
        return FactType("enum", tuple(str(v) for v in spec.values))
    return FactType(spec.type)  # type: ignore[arg-type]


def _plain_read(name: str) -> Callable[[Any], Any]:
    return attrgetter(name)        # C-implemented: a window reads millions of facts


def many_reader(facts: list[Fact]) -> Callable[[Any], dict[str, Any]]:
    """Reads these facts of one owner into {path: value}: the attributes read as is in one
    C call (attrgetter), the derived ones one by one. A window reads millions of facts."""
    plain = [f for f in facts if f.attr is not None]
    paths = tuple(f.path for f in plain)
    other = [(f.path, f.read) for f in facts if f.attr is None]
    get = attrgetter(*(f.attr for f in plain)) if len(plain) > 1 else None
    one = plain[0] if len(plain) == 1 else None

    def read(owner: Any) -> dict[str, Any]:
        out = dict(zip(paths, get(owner))) if get is not None else (
            {one.path: one.read(owner)} if one is not None else {})
        for path, r in other:
            out[path] = r(owner)
        return out
    return read


def _derived_read(spec: FieldSpec, default_source: str) -> Callable[[Any], Any]:
    fn, source = DERIVATIONS[spec.derive], spec.from_ or default_source  # type: ignore[index]
    return lambda owner: fn(owner, source)


def _const(text: str) -> Callable[[Any], str]:
    return lambda owner: text


class FieldRegistry:
    """Everything derived from rules/fields.yaml. Build with `load_registry` or `from_data`."""

    def __init__(self, spec: RegistryFile):
        self.spec = spec
        self.fields: dict[str, FieldSpec] = {f.id: f for f in spec.fields}
        self.facts: dict[str, Fact] = {}
        self.lists: dict[str, ListInfo] = {}
        self.subjects: dict[str, ListInfo] = {}
        self._labels: dict[str, str] = {AWARD_LEDGER: "兑现台账（本系统无法查询时需人工核对）"}
        for f in spec.fields:
            self._labels[f.id] = f.label
            if f.type == "list":
                self._add_list(f)
            elif f.type == "object":
                for sub in f.fields:
                    path = f"{f.id}.{sub.id}"
                    self._labels[path] = sub.label
                    self._add(Fact(path, sub, _fact_type(sub), "enterprise",
                                   (lambda o, s: lambda p: _object_field(p, o, s))(f.id, sub.id),
                                   (lambda o, p_: lambda p: o if getattr(p, o) is None else p_)(f.id, path),
                                   10 ** sub.decimals))
            else:
                read = _derived_read(f, f.id) if f.derive else _plain_read(f.id)
                self._add(Fact(f.id, f, _fact_type(f), "enterprise", read, _const(f.id), 10 ** f.decimals,
                               None if f.derive else f.id))
        for d in spec.derived:
            self._labels[d.id] = d.label
            self._add(Fact(d.id, d, _fact_type(d), "enterprise", _derived_read(d, d.id),
                           _const(d.from_ or d.id), 10 ** d.decimals))

    def _add(self, fact: Fact) -> None:
        self.facts[fact.path] = fact

    def _add_list(self, f: FieldSpec) -> None:
        items: dict[str, Fact] = {}
        for sub in [*f.fields, *f.derived]:
            read = _derived_read(sub, sub.id) if sub.derive else _plain_read(sub.id)
            ask = _const(AWARD_LEDGER if sub.derive == "award_ledger" else (sub.from_ or sub.id))
            items[sub.id] = Fact(sub.id, sub, _fact_type(sub), "item", read, ask, 10 ** sub.decimals,
                                 None if sub.derive else sub.id)
        info = ListInfo(f.id, f, items)
        self.lists[f.id] = info
        if f.subject:
            self.subjects[f.subject] = info
            for name, fact in items.items():
                self._add(Fact(f"{f.subject}.{name}", fact.spec, fact.type, f.subject, fact.read,
                               fact.ask, fact.scale, fact.attr))

    # -- reading -------------------------------------------------------------------------------
    def list_of(self, subject: str) -> ListInfo:
        return self.subjects[subject]

    def field_at(self, path: str) -> FieldSpec | None:
        """The spec of a profile path (`violations[2].kind`, `hnte_certificate.issued_on`) or of a
        fact path (`certificate.origin`, `industry_section`)."""
        if path in self.facts:
            return self.facts[path].spec
        parts = [p for p in re.split(r"\[\d+\]\.?|\.", path) if p]
        specs = list(self.fields.values())
        found = None
        for part in parts:
            found = next((s for s in specs if s.id == part), None)
            if found is None:
                return None
            specs = [*found.fields, *found.derived]
        return found

    # -- words for readers ----------------------------------------------------------------------
    def label(self, path: str, profile: Any = None) -> str:
        """Chinese name of a profile or fact path; list items are named by their key when the
        profile is given (注册证 川械注准20252170031 的来源), else by position (第1项)."""
        path = path.removeprefix("profile.")
        if path in self._labels:
            return self._labels[path]
        if path in self.facts:
            return self.facts[path].label
        m = re.match(r"^([a-z_]+)\[(\d+)\](?:\.(.+))?$", path)
        if m and m.group(1) in self.lists:
            info, index, rest = self.lists[m.group(1)], int(m.group(2)), m.group(3)
            items = getattr(profile, info.name, None) if profile is not None else None
            if isinstance(profile, dict):
                items = profile.get(info.name)
            key = None
            if isinstance(items, list) and index < len(items) and info.spec.key:
                item = items[index]
                key = item.get(info.spec.key) if isinstance(item, dict) else getattr(item, info.spec.key, None)
            if isinstance(key, str) and len(key) > 40:      # a pasted page of text names no record
                key = None
            head = f"{info.item_label} {key}" if key else f"{info.label}第{index + 1}项"
            if not rest:
                return head
            sub = info.items.get(rest)
            return f"{head}的{sub.label if sub else rest}"
        spec = self.field_at(path)
        return spec.label if spec is not None else "企业画像"

    def unread_input(self, path: str, profile: Any) -> str | None:
        """The text given at a profile path that is asked for although it was filled in: a
        value no derivation could read (a certificate number of an unknown format). None when
        the input is simply missing."""
        m = re.match(r"^([a-z_]+)\[(\d+)\]\.([a-z_]+)$", path.removeprefix("profile."))
        if not m or m.group(1) not in self.lists or profile is None:
            return None
        items = profile.get(m.group(1)) if isinstance(profile, dict) else getattr(profile, m.group(1), None)
        if not isinstance(items, list) or int(m.group(2)) >= len(items):
            return None
        item = items[int(m.group(2))]
        v = item.get(m.group(3)) if isinstance(item, dict) else getattr(item, m.group(3), None)
        return v if isinstance(v, str) and v.strip() else None

    def value_text(self, path: str, value: Any) -> str:
        """A value as a reader sees it: enum labels, 是/否, money in 元, shares in %."""
        if value is None:
            return vocab.NOT_PROVIDED
        spec = self.field_at(path)
        if isinstance(value, bool):
            if spec is not None and spec.type == "object":
                return "持有" if value else (spec.false_means or vocab.NO)
            return vocab.yes_no(value)
        if value is False and spec is not None and spec.false_means:
            return spec.false_means
        if isinstance(value, list):
            return "、".join(self.value_text(path, v) for v in value) or "无"
        if isinstance(value, dict):
            return "，".join(f"{self.label(f'{path}.{k}')} {self.value_text(f'{path}.{k}', v)}"
                            for k, v in value.items())
        if spec is not None:
            label = spec.value_label(value)
            if label is not None:
                return label
            if spec.values and spec.type == "string":
                return f"行政区划代码 {value}" if spec.derive and "division" in spec.derive else str(value)
            if spec.type in ("int", "number") and isinstance(value, (int, float)):
                return vocab.number(value, spec.unit)
            if spec.type == "date":
                return vocab.cn_date(value)
        return str(value)

    # -- inputs ----------------------------------------------------------------------------------
    def entered_fields(self) -> list[FieldSpec]:
        """Top-level fields an enterprise fills in, in order (no derived ones)."""
        return [f for f in self.spec.fields if f.entered]

    def known_keys(self, container: str | None) -> list[str]:
        """Keys accepted at one level of a profile: top level (None), or inside a list item or
        an object (`device_registrations`, `hnte_certificate`)."""
        if container is None:
            return [f.id for f in self.spec.fields if f.entered]
        spec = self.fields.get(container)
        return [f.id for f in spec.fields] if spec is not None else []


def _object_field(profile: Any, obj: str, sub: str) -> Any:
    v = getattr(profile, obj)
    return None if v is None or v is False else getattr(v, sub)


class RegistryError(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems    # (line, message)
        super().__init__("；".join(f"第{line}行：{msg}" for line, msg in problems))


def registry_from(doc: SourceDoc) -> FieldRegistry:
    """Validate a parsed fields.yaml; RegistryError lists every problem with its line."""
    try:
        spec = RegistryFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
            where = ".".join(str(x) for x in loc) or "(文件)"
            problems.append((doc.line_of(loc), f"{where}: {pydantic_message(e)}"))
        raise RegistryError(problems) from None
    problems = []

    def check(specs: list[FieldSpec], loc: tuple, sources: set[str]) -> None:
        ids = [s.id for s in specs]
        for i, s in enumerate(specs):
            if ids.count(s.id) > 1 and ids.index(s.id) != i:
                problems.append((doc.line_of(loc + (i, "id")), f"字段 id `{s.id}` 重复"))
            if s.from_ is not None and s.from_ not in sources and s.derive != "award_ledger":
                problems.append((doc.line_of(loc + (i, "from")), f"`from: {s.from_}` 不是已登记的字段"))
            if s.not_before is not None and not (s.type == "date" and s.not_before in ids[:i]
                                                 and specs[ids.index(s.not_before)].type == "date"):
                # validated in order: the earlier date must be read first
                problems.append((doc.line_of(loc + (i, "not_before")),
                                 f"`not_before: {s.not_before}` 必须是同一层中排在前面的日期字段"))

    top = {f.id for f in spec.fields}
    check([*spec.fields, *spec.derived], ("fields",), top)
    for i, f in enumerate(spec.fields):
        check([*f.fields, *f.derived], ("fields", i, "fields"), {s.id for s in f.fields})
    for i, d in enumerate(spec.derived):
        if d.derive is None:
            problems.append((doc.line_of(("derived", i)), f"派生事实 {d.id} 必须有 derive"))
    subjects = [f.subject for f in spec.fields if f.subject]
    if len(subjects) != len(set(subjects)):
        problems.append((doc.line_of(("fields",)), "两个列表声明了同一个 subject"))
    if problems:
        raise RegistryError(problems)
    return FieldRegistry(spec)


def load_registry(path: Path) -> FieldRegistry:
    return registry_from(load_yaml(path))
