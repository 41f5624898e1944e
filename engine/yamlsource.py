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


def load_yaml(path: Path) -> SourceDoc:
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = _build(node, (), lines, loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(path, (mark.line + 1) if mark else 1, f"YAML 语法错误：{exc.problem}") from exc
    except YamlSyntaxError as exc:
        raise YamlSyntaxError(path, exc.line, exc.message) from exc
    finally:
        loader.dispose()
    return SourceDoc(path=path, data=data, lines=lines)
