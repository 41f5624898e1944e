#!/usr/bin/env python3
"""Generate reference documents from the code, so they cannot drift from it.

    python scripts/gen_docs.py api            # write docs/api.md from the app's OpenAPI document
    python scripts/gen_docs.py profile        # write docs/profile.md from the field registry
    python scripts/gen_docs.py glossary       # write docs/glossary.md from engine/vocabulary.py
    python scripts/gen_docs.py all --check    # exit 1 if a committed document differs

docs/api.md: every endpoint (method, path, role, parameters, request body, responses) from the
FastAPI app, and the enterprise profile's fields from the field registry (rules/fields.yaml).
Response examples are left to /docs, where the engine computes them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
API_MD = REPO / "docs" / "api.md"
METHOD_ORDER = {"get": 0, "post": 1, "delete": 2}
ROLE_TEXT = {"public": "公开", "staff": "经办人员或管理员令牌", "admin": "管理员令牌"}
TYPE_TEXT = {"string": "文本", "integer": "整数", "number": "数字", "boolean": "true/false", "array": "列表",
             "object": "对象", "null": "null"}
FORMAT_TEXT = {"date": "日期 YYYY-MM-DD", "date-time": "时间", "binary": "文件"}
FIELD_TYPE = {"string": "文本", "bool": "是/否", "int": "整数", "number": "数字", "date": "日期", "enum": "取值之一",
              "object": "对象", "list": "列表"}


def _app():
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("YAGU_DATA_DIR", tempfile.mkdtemp(prefix="yagu-docs-"))
    from api.app import create_app
    from api.settings import Settings
    return create_app(Settings(database_url="sqlite://", migrate_on_start=False, run_jobs=False))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _type(schema: dict, components: dict) -> str:
    """A schema as a reader's type: 文本（≤ 32 字）, 整数 1–500, 取值之一：a、b, 对象 `Model`…"""
    if "$ref" in schema:
        return f"对象 `{schema['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in schema:
        # bounds documented beside an optional field's branches apply to its value
        bounds = {k: schema[k] for k in ("minimum", "maximum", "minLength", "maxLength", "pattern") if k in schema}
        parts = [_type({**s, **bounds}, components) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " 或 ".join(parts) + ("，可为 null" if nullable else "")
    if "enum" in schema:
        return "取值之一：" + "、".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    t = schema.get("type", "")
    text = FORMAT_TEXT.get(schema.get("format", ""), TYPE_TEXT.get(t, t or "任意"))
    if t == "array":
        text = f"{_type(schema.get('items', {}), components)} 的列表"
        if "maxItems" in schema:
            text += f"（至多 {schema['maxItems']} 项）"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None or hi is not None:
        text += f" {_num(lo) if lo is not None else '…'}–{_num(hi) if hi is not None else '…'}"
    if "maxLength" in schema:
        text += f"（{schema.get('minLength', 0)}–{schema['maxLength']} 字）" if schema.get("minLength") \
            else f"（≤ {schema['maxLength']} 字）"
    if "pattern" in schema:
        text += f"，格式 `{schema['pattern']}`"
    return text


def _role(op: dict) -> str:
    if not op.get("security"):
        return "public"
    return "admin" if "管理员" in op.get("tags", []) else "staff"


def _body(op: dict, components: dict) -> list[str]:
    body = op.get("requestBody")
    if not body:
        return []
    media, content = next(iter(body["content"].items()))
    schema = content["schema"]
    # an optional body (e.g. the close's reason) is a choice between the model and null
    schema = next((s for s in schema.get("anyOf", []) if "$ref" in s), schema)
    ref = schema.get("$ref", "")
    model = components[ref.rsplit("/", 1)[-1]] if ref else schema
    required = set(model.get("required", []))
    out = [f"请求体（`{media}`）：", "", "| 字段 | 类型 | 必填 | 说明 |", "|---|---|---|---|"]
    for name, prop in model.get("properties", {}).items():
        out.append(f"| `{name}` | {_cell(_type(prop, components))} | {'是' if name in required else '否'} | "
                   f"{_cell(prop.get('description', ''))} |")
    examples = model.get("examples")
    if examples:
        out += ["", "示例：", "", "```json", json.dumps(examples[0], ensure_ascii=False, indent=2), "```"]
    return out + [""]


def _operation(path: str, method: str, op: dict, components: dict) -> list[str]:
    out = [f"### `{method.upper()} {path}` — {op['summary']}", "", op.get("description", ""), "",
           f"权限：{ROLE_TEXT[_role(op)]}", ""]
    params = op.get("parameters", [])
    if params:
        out += ["| 参数 | 位置 | 类型 | 必填 | 说明 |", "|---|---|---|---|---|"]
        where = {"path": "路径", "query": "查询", "header": "请求头"}
        for p in params:
            out.append(f"| `{p['name']}` | {where.get(p['in'], p['in'])} | {_cell(_type(p['schema'], components))} | "
                       f"{'是' if p.get('required') else '否'} | {_cell(p.get('description', ''))} |")
        out.append("")
    out += _body(op, components)
    lines = []
    for code, resp in sorted(op["responses"].items()):
        media = ", ".join(f"`{m}`" for m in resp.get("content", {}))
        schema = next(iter(resp.get("content", {}).values()), {}).get("schema", {})
        model = f" `{schema['$ref'].rsplit('/', 1)[-1]}`" if "$ref" in schema and code < "400" else ""
        lines.append(f"- {code}：{resp.get('description', '')}{model}{'（' + media + '）' if media and code < '400' else ''}")
    return out + ["响应：", "", *lines, ""]


def _profile_fields(registry) -> list[str]:
    out = ["| 字段 | 名称 | 类型 | 取值范围 | 说明 |", "|---|---|---|---|---|"]

    def rng(s, labels: dict) -> str:
        if s.values:
            return "；".join(f"`{k}` {v}" for k, v in s.values.items())
        if s.type in ("int", "number"):
            places = "" if s.type == "int" or not s.decimals else f"，至多 {s.decimals} 位小数"
            return f"{_num(s.min)} 至 {_num(s.max)}{' ' + s.unit if s.unit and s.unit != '比例' else ''}{places}"
        if s.type == "string" and s.max_length:
            # a certificate number in no known format is kept (its class and origin then unknown)
            checked = "，按编号格式读取类别（无法识别的不拒收，相关条件为待补充）" if s.format == "certificate_no" \
                else "，校验格式" if s.format else ""
            return f"≤ {s.max_length} 字{checked}"
        if s.type == "date":
            return "YYYY-MM-DD" + ("，不晚于今天" if s.past else "") + (
                f"，不早于“{labels[s.not_before]}”" if s.not_before else "")
        if s.type == "list" and s.max_items:
            return f"至多 {s.max_items} 项"
        if s.type == "object" and s.false_means:
            return f"对象，或 false（{s.false_means}）"
        return ""

    def walk(specs, prefix: str) -> None:
        labels = {s.id: s.label for s in specs}
        for s in specs:
            if not s.entered:
                continue
            req = "（必填）" if s.required else ""
            out.append(f"| `{prefix}{s.id}` | {_cell(s.label)}{req} | {FIELD_TYPE[s.type]} | {_cell(rng(s, labels))} | "
                       f"{_cell(s.help or '')} |")
            if s.type == "object":
                walk(s.fields, f"{prefix}{s.id}.")
            elif s.type == "list":
                walk(s.fields, f"{prefix}{s.id}[].")
    walk(registry.entered_fields(), "")
    return out


def _reachable(spec: dict) -> set[str]:
    """Names of the component schemas the operations' bodies and successful responses use."""
    components = spec["components"]["schemas"]
    todo: list[Any] = []
    for item in spec["paths"].values():
        for op in item.values():
            todo += [c.get("schema", {}) for c in op.get("requestBody", {}).get("content", {}).values()]
            todo += [c.get("schema", {}) for code, r in op["responses"].items() if code < "300"
                     for c in r.get("content", {}).values()]
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    todo.append(components[name])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return {n for n in seen if not n.startswith("Body_")}


def api_markdown() -> str:
    """docs/api.md as the app and the field registry define it."""
    app = _app()
    spec = app.openapi()
    components = spec["components"]["schemas"]
    ops = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    tags = [t["name"] for t in spec.get("tags", [])]

    def tag_of(op: dict) -> str:
        return next((t for t in tags if t in op.get("tags", []) and t != "工作人员"), op["tags"][0]) \
            if "管理员" in op.get("tags", []) else op["tags"][0]

    lines = [f"# {spec['info']['title']}：接口参考", "",
             "> 本文件由 `python scripts/gen_docs.py api` 从服务本身（FastAPI 应用和字段登记表 `rules/fields.yaml`）生成，"
             "请勿手工编辑；`tests/test_api_docs.py` 检查它与服务一致。运行服务后，`/docs`（Swagger UI）和 `/redoc` "
             "提供可交互的同一份文档，并附规则引擎实际给出的响应示例；机器可读的文档在 `/openapi.json`。", "",
             spec["info"]["description"].strip(), "", "## 接口一览", "",
             "| 方法 | 路径 | 说明 | 权限 |", "|---|---|---|---|"]
    order = {t: i for i, t in enumerate(tags)}
    ops.sort(key=lambda o: (order.get(tag_of(o[2]), 99), o[0], METHOD_ORDER.get(o[1], 9)))
    for path, method, op in ops:
        lines.append(f"| {method.upper()} | `{path}` | {_cell(op['summary'])} | {ROLE_TEXT[_role(op)]} |")
    lines.append("")
    for t in spec.get("tags", []):
        group = [o for o in ops if tag_of(o[2]) == t["name"]]
        if not group:
            continue
        lines += [f"## {t['name']}接口", "", t["description"], ""]
        for path, method, op in group:
            lines += _operation(path, method, op, components)
    lines += ["## 数据结构", "", "请求和响应中出现的对象（字段说明见 `/docs`）。", ""]
    for name in sorted(_reachable(spec)):
        model = components[name]
        required = set(model.get("required", []))
        lines += [f"### `{name}`", ""] + ([model["description"].strip(), ""] if model.get("description") else [])
        lines += ["| 字段 | 类型 | 必有 |", "|---|---|---|"]
        lines += [f"| `{f}` | {_cell(_type(p, components))} | {'是' if f in required else '否'} |"
                  for f, p in model.get("properties", {}).items()]
        lines.append("")
    lines += ["## 企业画像字段", "",
              "`profile` 的字段（来自字段登记表 `rules/fields.yaml`）。缺省或 `null` 表示未知；不认识的字段会被指出。"
              "列表字段的项写作 `字段[].子字段`。", ""]
    lines += _profile_fields(app.state.runtime.evaluator.registry)
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def profile_markdown() -> str:
    """docs/profile.md: the enterprise profile, as the field registry declares it."""
    sys.path.insert(0, str(REPO))
    from engine.loader import load_rulebook
    registry = load_rulebook(REPO / "rules").fields
    lines = ["# 企业画像：字段参考", "",
             "> 本文件由 `python scripts/gen_docs.py profile` 从字段登记表 `rules/fields.yaml` 生成，请勿手工编辑；"
             "`tests/test_docs.py` 检查它与登记表一致。", "",
             "企业画像是一家企业的全部事实，以 JSON 对象提交（接口的 `profile`、导入文件的一行、网页表单）。",
             "", "- 缺省或 `null` 表示**未知**：相关条件判为“待补充”，从不当作“否”或 0。",
             "- 不认识的字段是错误，并提示最接近的已知字段（如 `in_prak` → `in_park`）。",
             "- 每个数字都有取值范围和小数位数；超出范围的值在任何入口都得到同样的 422 说明。",
             "- 列表字段为空列表 `[]` 表示“没有”，`null` 表示“不清楚”。", "",
             "## 字段", ""]
    lines += _profile_fields(registry)
    lines += ["", "## 推定的事实", "", "由其他字段推定、不需填写的事实（规则条件可以读取）。", "",
              "| 事实 | 名称 | 由此推定 |", "|---|---|---|"]
    for path, fact in registry.facts.items():
        if fact.spec.derive and fact.spec.from_:
            lines.append(f"| `{path}` | {_cell(fact.label)} | `{fact.spec.from_}` |")
    lines += ["", "## 按项判定的列表", "",
              "以下列表的每一项单独判定（一项一个结论），规则文件以 `unit:` 指明。", "",
              "| 列表 | 每项是 | 判定单位 | 编号字段 |", "|---|---|---|---|"]
    for subject, info in registry.subjects.items():
        lines.append(f"| `{info.name}` | {_cell(info.item_label)} | `{subject}` | `{info.spec.key}` |")
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def glossary_markdown() -> str:
    """docs/glossary.md: one word per concept, as engine/vocabulary.py defines them."""
    sys.path.insert(0, str(REPO))
    from engine import vocabulary as v
    lines = ["# 词汇表", "",
             "> 本文件由 `python scripts/gen_docs.py glossary` 从 `engine/vocabulary.py` 生成，请勿手工编辑。"
             "网页、告知书、导出文件、命令行和接口说明一律使用这里的词，一个概念一个词。", "",
             "| 用词 | 英文（代码中） | 含义 |", "|---|---|---|"]
    lines += [f"| {cn} | {en} | {_cell(meaning)} |" for cn, en, meaning in v.GLOSSARY]
    for title, table in (("判定结论", v.STATUS), ("条件的判定结果", v.OUTCOME), ("事项类别", v.KIND),
                         ("申报批次的状态", v.WINDOW_STATE), ("申报的状态", v.APPLICATION_STATE), ("角色", v.ROLE)):
        lines += ["", f"## {title}", "", "| 代码中的值 | 用词 |", "|---|---|"]
        lines += [f"| `{k}` | {word} |" for k, word in table.items()]
    return "\n".join(lines).rstrip() + "\n"


DOCS = {"api": (API_MD, api_markdown), "profile": (REPO / "docs" / "profile.md", profile_markdown),
        "glossary": (REPO / "docs" / "glossary.md", glossary_markdown)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="从代码生成参考文档")
    ap.add_argument("doc", choices=[*DOCS, "all"],
                    help="api：docs/api.md；profile：docs/profile.md；glossary：docs/glossary.md；all：全部")
    ap.add_argument("--check", action="store_true", help="只检查已提交的文件是否与代码一致")
    args = ap.parse_args(argv)
    stale = 0
    for name in (DOCS if args.doc == "all" else [args.doc]):
        path, build = DOCS[name]
        text = build()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                print(f"{path.relative_to(REPO)} 与代码不一致：请运行 python scripts/gen_docs.py {name}",
                      file=sys.stderr)
                stale = 1
            continue
        path.write_text(text, encoding="utf-8")
        print(f"已写入 {path.relative_to(REPO)}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
