"""YAML loading that remembers the line of every value, so rule errors can say file:line."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass
class SourceDoc:
    """A parsed YAML document plus the 1-based line of each value, keyed by its path."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest known prefix of `loc` (pydantic locs may point below a value)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(Exception):
    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


_constructor = yaml.SafeLoader  # scalar resolution (dates, bools, numbers) as PyYAML's safe loader


def _build(node: yaml.Node, loc: Loc, lines: dict[Loc, int], loader: yaml.SafeLoader) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise YamlSyntaxError(Path(""), key_node.start_mark.line + 1, "映射的键不能是列表或映射")
            if key in out:
                raise YamlSyntaxError(Path(""), key_node.start_mark.line + 1, f"重复的键：{key}")
            out[key] = _build(value_node, loc + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, loc + (i,), lines, loader) for i, child in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # e.g. `2026-02-30` looks like a date but is none: keep the text, validation reports it
        return node.value


# PyYAML's problems, as someone who edits the file reads them (its own words are English)
_PROBLEMS = (
    ("mapping values are not allowed", "这里不能再写“键: 值”：可能是缩进不对，或值里的冒号需要加引号"),
    ("'\\t'", "含有制表符（Tab）：只能用空格缩进"),
    ("cannot start any token", "含有不能出现在这里的字符：文字请加引号"),
    ("expected <block end>", "缩进与上文不一致"),
    ("did not find expected key", "缩进与上文不一致，或列表项缺少“- ”"),
    ("could not find expected ':'", "缺少冒号“:”，或引号没有闭合"),
    ("expected ',' or ']'", "方括号 [ ] 没有闭合，或各项之间缺少逗号"),
    ("expected ',' or '}'", "花括号 { } 没有闭合，或各项之间缺少逗号"),
    ("found unexpected end of stream", "文件意外结束：引号或括号没有闭合"),
    ("found undefined alias", "使用了未定义的锚点（*名称）"),
    ("did not find expected node content", "这里缺少内容"),
    ("found unknown escape character", "双引号里有无效的反斜杠转义：改用单引号或写成 \\\\"),
)


def yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    text = f"{exc.problem or ''} {exc.context or ''}"
    return next((words for needle, words in _PROBLEMS if needle in text),
                "请检查这一行和上一行的缩进、冒号、引号和括号")


def load_yaml(path: Path) -> SourceDoc:
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = _build(node, (), lines, loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(path, (mark.line + 1) if mark else 1, f"YAML 格式错误：{yaml_problem(exc)}") from exc
    except YamlSyntaxError as exc:
        raise YamlSyntaxError(path, exc.line, exc.message) from exc
    finally:
        loader.dispose()
    return SourceDoc(path=path, data=data, lines=lines)
