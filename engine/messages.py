"""Chinese messages for pydantic validation errors — one translation for enterprise profiles,
HTTP request bodies and rule files."""
from __future__ import annotations

import json
import re
from typing import Any


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "布尔值"
    if isinstance(value, str):
        return "文字（带引号）"
    if isinstance(value, (int, float)):
        return "数字"
    if isinstance(value, list):
        return "列表"
    if isinstance(value, dict):
        return "对象"
    if value is None:
        return "空值（null）"
    return type(value).__name__


_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def not_a_number(what: str, value: Any) -> str:
    """A value where a number (`what`: 数字 or 整数) belongs; a number written in quotes, the
    usual slip of an exported file, is told how to write it."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return f"必须是{what}：请去掉引号，写成 {value.strip()}"
    return f"必须是{what}，不能是{kind_of(value)}"


def num_text(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


# the formats the rule files' patterns ask for, as an editor reads them
PATTERN_WORDS = {
    r"^\d{2}-\d{2}$": "应为“月-日”两位数字，例如 03-01",
    r"^[a-z][a-z0-9_]*$": "应为小写字母开头，只含小写字母、数字和下划线，例如 in_park",
    r"^[a-z][a-z0-9_-]*$": "应为小写字母开头，只含小写字母、数字、下划线和连字符，例如 caishui-2023-12",
    r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$": "应为小写字母开头、以连字符分词，例如 small-low-profit-cit",
}


def pydantic_message(err: dict) -> str:
    """A Chinese message for one pydantic validation error (profiles, requests, rule files)."""
    t = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if t.startswith("yagu_"):
        return err["msg"]
    if t == "missing":
        return "缺少必填字段"
    if t == "float_type":
        return not_a_number("数字", value)
    if t == "int_type":
        if isinstance(value, float):
            return "必须是整数，不能带小数点"
        return not_a_number("整数", value)
    if t == "bool_type" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return f"必须是 true 或 false：请去掉引号，写成 {value.strip().lower()}"
    if t == "bool_type":
        return f"必须是 true 或 false，不能是{kind_of(value)}"
    if t == "string_type":
        return f"必须是字符串，不能是{kind_of(value)}"
    if t == "string_too_short":
        return "不能为空"
    if t == "string_too_long":
        return f"不能超过 {ctx.get('max_length')} 个字符"
    if t == "literal_error":
        options = "、".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f"“{value}”"
        return f"取值 {shown} 无效，应为以下之一：{options}"
    if t in ("greater_than_equal", "greater_than"):
        return f"不能小于 {num_text(ctx.get('ge', ctx.get('gt')))}"
    if t in ("less_than_equal", "less_than"):
        return f"不能大于 {num_text(ctx.get('le', ctx.get('lt')))}"
    if t == "finite_number":
        return "必须是有限的数字"
    if t == "list_type":
        return f"必须是列表（[] 表示没有，null 表示未知），不能是{kind_of(value)}"
    if t in ("model_type", "model_attributes_type", "dict_type"):
        return f"必须是对象，不能是{kind_of(value)}"
    fallback = {
        "missing": "缺少必填字段",
        "json_invalid": "JSON 格式错误",
        "json_type": "应为 JSON 数据",
        "string_type": "应为字符串",
        "int_type": "应为整数",
        "int_parsing": "应为整数",
        "int_from_float": "应为整数，不能带小数",
        "float_type": "应为数字",
        "float_parsing": "应为数字",
        "decimal_type": "应为数字",
        "decimal_parsing": "应为数字",
        "bool_type": "应为布尔值（true 或 false）",
        "bool_parsing": "应为布尔值（true 或 false）",
        "date_type": "应为日期，写成“年-月-日”，如 2026-03-31",
        "date_parsing": "应为日期，写成“年-月-日”，如 2026-03-31",
        "date_from_datetime_parsing": "应为日期，写成“年-月-日”，如 2026-03-31",
        "date_from_datetime_inexact": "应为日期，不能带时间",
        "list_type": "应为数组",
        "dict_type": "应为 JSON 对象",
        "model_type": "应为 JSON 对象",
        "model_attributes_type": "应为 JSON 对象",
        "extra_forbidden": "不允许的字段",
        "uuid_parsing": "应为 UUID",
        "bytes_type": "应为文件",
        "value_error": "取值无效",
        "url_parsing": "应为网址",
        "string_unicode": "应为 UTF-8 文本",
    }
    if t == "date_from_datetime_parsing" or t == "date_parsing":
        return f"日期无效：{json.dumps(value, ensure_ascii=False, default=str)}，应为有效的日期，写成“年-月-日”，如 2026-03-31"
    if t == "value_error" and ctx.get("error"):
        return str(ctx["error"])
    if t == "string_pattern_mismatch":
        shown = json.dumps(value, ensure_ascii=False, default=str)
        return f"格式不正确：{shown}，{PATTERN_WORDS.get(ctx.get('pattern', ''), '请对照说明中的格式')}"
    unit = "个字符" if isinstance(value, str) else "项"      # a bound on an optional text reads too_long
    if t == "too_short":
        return "不能为空" if ctx.get("min_length") in (None, 1) else f"至少需要 {ctx.get('min_length')} {unit}"
    if t == "too_long":
        return f"不能超过 {ctx.get('max_length')} 个字符" if unit == "个字符" else f"最多允许 {ctx.get('max_length')} 项"
    if t == "decimal_max_places":
        return f"最多保留 {ctx.get('decimal_places')} 位小数"
    if t in fallback:
        return fallback[t]
    return f"取值无效（{err['msg']}）"
