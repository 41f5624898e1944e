"""What a reader must never see, and profiles that show every value and every unknown fact.

`leaks(text, registry, book)` lists what in a page's, a notice's or a PDF's text betrays the
insides: a raw enum value (`self_developed`, `registration`, `audit`), a field or fact path
(`device_registrations[0]`, `in_park`, `certificate.origin`), an English status or outcome
(`eligible`, `needs_info`), an id of a benefit, criterion or material, a placeholder (待设置,
`None`, `null`, template syntax) or an escape that was printed instead of applied (`&lt;`,
Typst's `\\#`). `covering_profiles(registry)` builds, from rules/fields.yaml alone, profiles
that between them give every enum value (entered and derived) and leave every fact unknown.
Shared by the notice tests and the web tests.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from datetime import date
from html.parser import HTMLParser
from typing import Any

from engine import Rulebook
from engine.profile import ProfileError, parse_profile
from engine.registry import FieldRegistry, FieldSpec
from engine.uscc import make_uscc
from engine.vocabulary import APPLICATION_STATE, KIND, OUTCOME, STATUS, WINDOW_STATE

PLACEHOLDERS = ["待设置", "待填写", "None", "null", "undefined", "NaN", "True", "False", "Undefined",
                "{{", "}}", "{%", "%}", "['", "{'"]
ESCAPES = [re.compile(r"&(?:[a-z]+|#\d+|#x[0-9a-f]+);", re.I),       # HTML escaped twice
           re.compile(r"\\[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]")]   # a Typst escape printed
PATTERNS = [re.compile(r"[A-Za-z_]+\[\d+\]"),                         # list item paths
            re.compile(r"(?<![A-Za-z0-9])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9])"),  # snake_case
            re.compile(r"\[\s*\]|\{\s*\}|[≥≤]")]                        # Python reprs, formulas


def _ascii_word(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[a-z][a-z0-9_.\-]{2,}", v) is not None


def forbidden(registry: FieldRegistry, book: Rulebook | None = None) -> set[str]:
    """Every internal word of the rules and the registry a reader could be shown by mistake."""
    words = {*STATUS, *OUTCOME, *APPLICATION_STATE, *WINDOW_STATE, *KIND, *registry.facts, *registry.fields}
    for spec in _all_specs(registry.spec.fields + registry.spec.derived):
        words.add(spec.id)
        words.update(str(v) for v in spec.values)
    for info in registry.lists.values():
        words.update(f"{info.name}.{f}" for f in info.items)
    if book is not None:
        for b in book.benefits.values():
            words.add(b.id)
            words.update(c.id for c in b.spec.criteria)
            words.update(m.id for m in b.spec.materials)
    return {w for w in words if _ascii_word(w)}


def _all_specs(specs: list[FieldSpec]) -> list[FieldSpec]:
    out = []
    for s in specs:
        out += [s, *_all_specs([*s.fields, *s.derived])]
    return out


def leaks(text: str, registry: FieldRegistry, book: Rulebook | None = None) -> list[str]:
    """Each leak found, with the text around it."""
    found = []

    def hit(start: int, end: int) -> None:
        found.append(f"{text[start:end]!r} in …{text[max(0, start - 20):end + 20]}…")

    for word in sorted(forbidden(registry, book), key=len, reverse=True):
        for m in re.finditer(rf"(?<![A-Za-z0-9_.\-]){re.escape(word)}(?![A-Za-z0-9_\-])", text):
            hit(m.start(), m.end())
    for p in PLACEHOLDERS:
        for m in re.finditer(rf"(?<![A-Za-z]){re.escape(p)}(?![A-Za-z])", text):
            hit(m.start(), m.end())
    for pattern in (*ESCAPES, *PATTERNS):
        for m in pattern.finditer(text):
            hit(m.start(), m.end())
    return sorted(set(found))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._hidden += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(data)


def html_text(html: str) -> str:
    """The text a browser shows (and the tab title), whitespace collapsed."""
    p = _Text()
    p.feed(html)
    p.close()
    return re.sub(r"\s+", " ", "".join(p.chunks)).strip()


def pdf_pages(pdf: bytes, mode: str = "-raw") -> list[str]:
    """The text of each page as pdftotext (poppler-utils) extracts it: in the order it was
    written (-raw: a table cell's lines stay together) or as laid out (-layout)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdftotext", "-enc", "UTF-8", mode, f.name, "-"],
                             capture_output=True, text=True, check=True).stdout
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def pdf_text(pdf: bytes) -> str:
    """The whole text, lines joined without spaces (a line break inside a word or a number
    must not hide it from a search)."""
    return "".join("".join(page.split()) for page in pdf_pages(pdf))


# --- profiles ------------------------------------------------------------------------------------
CERTIFICATES = ["川械注准2025217{:04d}", "国械注进2025317{:04d}", "国械注许2025317{:04d}", "川资械备2025{:04d}号",
                "不规范编号{:04d}"]        # registration/filing, 准/进/许, and a number nobody can parse


def _example(spec: FieldSpec) -> Any:
    """The internal value of a field's example (examples are written as a user types them)."""
    ex = spec.example
    if spec.type == "bool":
        return ex == "是"
    if spec.type == "enum":
        return next((k for k, label in spec.values.items() if label == ex), ex)
    if spec.type == "date":
        return ex.isoformat() if isinstance(ex, date) else ex
    if spec.type == "object":
        return {f.id: _example(f) for f in spec.fields}
    if spec.type == "list":
        return [{f.id: _example(f) for f in spec.fields}]
    return ex


def _with_certificate(p: dict, k: int, registry: FieldRegistry) -> dict:
    """`p` with the k-th kind of certificate number, or the next one its stated class agrees
    with (a number states the class; a contradiction is refused)."""
    for t in range(len(CERTIFICATES)):
        items = [{**item, "certificate_no": CERTIFICATES[(k + t) % len(CERTIFICATES)].format(k)}
                 for item in p["device_registrations"]]
        try:
            parse_profile({**p, "device_registrations": items}, registry)
        except ProfileError:
            continue
        return {**p, "device_registrations": items}
    raise AssertionError(f"no certificate number agrees with {p['device_registrations']}")


def covering_profiles(registry: FieldRegistry) -> list[dict]:
    """Profiles that between them show every enum value and leave every fact unknown: one per
    value index (every enum field takes its k-th value, derived enums through the numbers and
    codes they come from), one per third of the facts left unknown, one that knows only who
    the enterprise is, and one whose every list is empty (no certificate at all)."""
    base = {f.id: _example(f) for f in registry.entered_fields()}
    enums = [f for f in registry.entered_fields() if f.values]
    item_enums = {name: [s for s in info.spec.fields if s.values] for name, info in registry.lists.items()}
    derived = [s for s in _all_specs(registry.spec.derived) if s.values]
    width = max(len(s.values) for s in _all_specs(registry.spec.fields + registry.spec.derived) if s.values)
    profiles = []
    for k in range(width):
        p = {**base, "uscc": make_uscc(f"91512000MA{k:07d}"), "name": f"资阳覆盖测试{k}口腔医疗器械有限公司"}
        for f in enums:
            p[f.id] = list(f.values)[k % len(f.values)]
        for name, specs in item_enums.items():
            item = dict(base[name][0])
            for s in specs:
                item[s.id] = list(s.values)[k % len(s.values)]
            p[name] = [item]
        for s in derived:                       # derived from industry_code: its first letter
            if s.id == "industry_section":
                p["industry_code"] = f"{list(s.values)[k % len(s.values)]}10"
        profiles.append(_with_certificate(p, k, registry))
    optional = [f.id for f in registry.entered_fields() if not f.required]
    for j in range(3):
        p = {**base, "uscc": make_uscc(f"91512000MB{j:07d}"), "name": f"资阳未知测试{j}口腔医疗器械有限公司"}
        profiles.append(p | {name: None for name in optional[j::3]})
    p = {**base, "uscc": make_uscc("91512000MB0000003"), "name": "资阳未知测试3口腔医疗器械有限公司"}
    for f in registry.entered_fields():         # every part of an object or a list item unknown
        unknown = {s.id: None for s in f.fields if not s.required}
        if f.type == "object":
            p[f.id] = {**p[f.id], **unknown}
        elif f.type == "list":
            p[f.id] = [{**item, **unknown} for item in p[f.id]]
    profiles.append(p)
    profiles.append({"uscc": make_uscc("91512000MC0000000"), "name": "资阳只知其名口腔医疗器械有限公司"})
    none = {**base, "uscc": make_uscc("91512000MC0000001"), "name": "资阳无注册证测试口腔医疗器械有限公司"}
    profiles.append(none | {f.id: [] for f in registry.entered_fields() if f.type == "list"})  # every list empty
    return profiles
