"""Default window dates from rules/windows.yaml (the provisional 一年两次 calendar)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

WINDOW_ID = re.compile(r"^(?P<year>[0-9]{4})-(?P<half>H[12])$")


@dataclass(frozen=True)
class WindowDefaults:
    label: str
    opens_on: date
    closes_on: date
    coverage_from: date | None
    coverage_to: date | None


def rules_dir() -> Path:
    env = os.environ.get("YAGU_RULES_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "rules"


def _md(year: int, month_day: str) -> date:
    m, d = month_day.split("-")
    return date(year, int(m), int(d))


def window_defaults(window_id: str) -> WindowDefaults | None:
    """Defaults for ids like 2026-H1 / 2026-H2, or None (other ids need explicit dates)."""
    m = WINDOW_ID.match(window_id)
    path = rules_dir() / "windows.yaml"
    if not m or not path.exists():
        return None
    year, half = int(m["year"]), m["half"]
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for w in data.get("windows") or []:
        if w.get("half") != half:
            continue

        def cov(spec):
            if not spec:
                return None
            return _md(year + int(spec.get("year_offset", 0)), str(spec["month_day"]))

        return WindowDefaults(
            label=str(w.get("label", "{year}年" + half)).format(year=year),
            opens_on=_md(year, str(w["opens_on"])),
            closes_on=_md(year, str(w["closes_on"])),
            coverage_from=cov(w.get("coverage_from")),
            coverage_to=cov(w.get("coverage_to")),
        )
    return None
