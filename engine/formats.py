"""Named checks and derivations the field registry (rules/fields.yaml) refers to by name.

A registry entry says `format: uscc` or `derive: certificate_kind`; the code behind each name
lives here, so the registry stays data and a reviewer can find every rule of validation.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from engine.certno import parse_certificate_no
from engine.uscc import validate_uscc

_INDUSTRY = re.compile(r"^[A-T][0-9]{2,4}$")


class FormatError(ValueError):
    """A value that does not follow its named format (message in Chinese)."""


def _uscc(v: str) -> str:
    try:
        return validate_uscc(v)
    except ValueError as e:
        raise FormatError(str(e)) from None


def _industry_code(v: str) -> str:
    code = v.upper()
    if not _INDUSTRY.match(code):
        raise FormatError("行业代码应为一个字母（A–T）加 2 至 4 位数字，例如 C3589")
    return code


# The provinces of GB/T 2260 (the first two digits of a division code), and 66 for the
# 新疆生产建设兵团 as registration authorities' codes write it.
_PROVINCES = {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
              "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
              "65", "66", "71", "81", "82"}


def _division_code(v: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]{5}", v):
        raise FormatError("行政区划代码应为6位数字，例如资阳市雁江区 512002")
    if v[:2] not in _PROVINCES:
        raise FormatError(f"行政区划代码的前两位“{v[:2]}”不是任何省级行政区的代码；请核对，例如资阳市雁江区 512002")
    return v


def _certificate_no(v: str) -> str:
    # Any text is accepted: a number in an unknown format makes the criteria that need its
    # parts unknown instead of refusing the profile (legacy 国食药监械(准)字… numbers exist).
    return v


FORMATS: dict[str, Callable[[str], str]] = {
    "uscc": _uscc,
    "industry_code": _industry_code,
    "certificate_no": _certificate_no,
    "division_code": _division_code,
}


# --- derivations: (owner object, source field) → value or None (unknown) ----------------------

def _parsed(attr: str) -> Callable[[Any, str], Any]:
    def derive(owner: Any, source: str) -> Any:
        parsed = parse_certificate_no(getattr(owner, source))
        return getattr(parsed, attr) if parsed is not None else None
    return derive


def _stated_or_certificate_class(owner: Any, source: str) -> Any:
    stated = getattr(owner, source)
    if stated is not None:
        return stated
    parsed = parse_certificate_no(owner.certificate_no)
    return parsed.device_class if parsed is not None else None


def _object_held(owner: Any, source: str) -> bool | None:
    v = getattr(owner, source)
    return None if v is None else v is not False


def _industry_section(owner: Any, source: str) -> str | None:
    code = getattr(owner, source)
    return code[0] if code else None


def _division(owner: Any, source: str) -> str | None:
    """The residence's administrative-division code as stated, else the registering authority's
    (USCC positions 3–8), which the USCC keeps even after the enterprise moves."""
    code = getattr(owner, source)
    if code:
        return code
    uscc = getattr(owner, "uscc", None)
    return uscc[2:8] if uscc else None


def _division_province(owner: Any, source: str) -> str | None:
    code = _division(owner, source)
    return code[:2] if code else None


def _division_prefecture(owner: Any, source: str) -> str | None:
    """Unknown for a province-level code (xx0000): the prefecture cannot be told from it."""
    code = _division(owner, source)
    return code[:4] if code and code[2:4] != "00" else None


DERIVATIONS: dict[str, Callable[[Any, str], Any]] = {
    "certificate_kind": _parsed("kind"),
    "certificate_approval": _parsed("approval"),
    "certificate_authority": _parsed("authority"),
    "certificate_catalogue": _parsed("catalogue_code"),
    "stated_or_certificate_class": _stated_or_certificate_class,
    "object_held": _object_held,
    "industry_section": _industry_section,
    "division_province": _division_province,
    "division_prefecture": _division_prefecture,
    # Answered by the award ledger, not by the profile (the evaluator's `awarded`).
    "award_ledger": lambda owner, source: None,
}

CLASS_NAMES = {"I": "第一类", "II": "第二类", "III": "第三类"}


def class_mismatch(item: Any) -> str | None:
    """A stated 管理类别 that contradicts the class the certificate number states."""
    stated, number = getattr(item, "device_class", None), getattr(item, "certificate_no", None)
    parsed = parse_certificate_no(number) if number else None
    if stated is None or parsed is None or parsed.device_class == stated:
        return None
    return (f"管理类别“{CLASS_NAMES[stated]}”与编号 {number} 所示的"
            f"{CLASS_NAMES[parsed.device_class]}不符")


# Cross-field checks of list items, keyed by the derivation that reads the checked field.
ITEM_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "stated_or_certificate_class": class_mismatch,
}
