"""The issuing body's settings of official notices (rules/notice-settings.yaml).

Each key is written `{value, note}`: the note says where the value comes from. A value left
null is *unset*: `unset()` names such keys, `yagu serve` reports them at start-up, and no
official (numbered, signed) notice is issued while any is unset — a placeholder never reaches
a printed notice. A self-check result needs none of them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.loader import rules_dir
from engine.messages import pydantic_message
from engine.yamlsource import YamlSyntaxError, load_yaml

LABELS = {
    "issuing_office": "发文机关", "submission_place": "现场提交地点", "submission_online": "网上提交渠道",
    "submission_how": "提交方式说明", "contact_department": "联系部门", "contact_phone": "联系电话",
    "payment_commitment": "兑现承诺", "reconsideration_body": "行政复议机关",
    "reconsideration_days": "申请行政复议期限（日）", "litigation_months": "提起行政诉讼期限（月）",
    "litigation_court": "管辖法院", "tax_office": "主管税务机关",
}


class SettingsError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("文书设置有误：\n" + "\n".join(problems))


class NoticeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuing_office: Optional[str] = Field(min_length=1, max_length=100)
    submission_place: Optional[str] = Field(min_length=1)
    submission_online: Optional[str] = Field(min_length=1)
    submission_how: Optional[str] = Field(min_length=1)
    contact_department: Optional[str] = Field(min_length=1, max_length=100)
    contact_phone: Optional[str] = Field(min_length=1, max_length=50)
    payment_commitment: Optional[str] = Field(min_length=1, max_length=500)
    reconsideration_body: Optional[str] = Field(min_length=1, max_length=100)
    reconsideration_days: Optional[int] = Field(ge=1)
    litigation_months: Optional[int] = Field(ge=1)
    litigation_court: Optional[str] = Field(min_length=1, max_length=100)
    tax_office: Optional[str] = Field(min_length=1)

    def unset(self) -> list[str]:
        """Chinese names of the settings not filled in yet."""
        return [LABELS[k] for k, v in self.model_dump().items() if v is None]


def settings_path() -> Path:
    return Path(os.environ.get("YAGU_NOTICE_SETTINGS") or rules_dir() / "notice-settings.yaml")


def load_settings(path: Path | str | None = None) -> NoticeSettings:
    """Read the settings file; every problem at once, with file and line."""
    path = Path(path or settings_path())
    try:
        doc = load_yaml(path)
    except OSError as exc:
        raise SettingsError([f"{path}: 无法读取（{exc.strerror}）"]) from None
    except YamlSyntaxError as exc:
        raise SettingsError([f"{path}:{exc.line}: {exc.message}"]) from None
    if not isinstance(doc.data, dict):
        raise SettingsError([f"{path}:1: 文件应为映射"])
    values, problems = {}, []
    for key, v in doc.data.items():
        line = doc.line_of((key,))
        if not isinstance(v, dict) or "value" not in v:
            problems.append(f"{path}:{line}: {key} 应写为 {{value: ..., note: ...}}")
            continue
        if not v.get("note"):
            problems.append(f"{path}:{line}: {key} 缺少 note（出处或说明）")
        values[key] = v["value"]
    for key in LABELS:
        if key not in values and not any(p.startswith(f"{path}") and f" {key} " in p for p in problems):
            problems.append(f"{path}: 缺少 {key}（{LABELS[key]}）")
    try:
        settings = NoticeSettings(**{k: v for k, v in values.items()})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"{path}:{doc.line_of((key,))}: {key}: {pydantic_message(err)}")
        settings = None
    if problems:
        raise SettingsError(problems)
    return settings
