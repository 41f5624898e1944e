"""Notices as HTML (the web and HTML downloads) and as Typst markup (the PDF), from one set of
jinja2 templates.

A kind's template (store.notices.KINDS) and `_base.j2` say what a notice says, once: plain text
and the element macros of the global `m` (`m.p`, `m.h2`, `m.table` …), which `_html.j2` and
`_typst.j2` write in each format. Content templates hold no markup of either format: their
literal text is escaped exactly like the values, so a quote, `#` or `*` in a sentence prints
as written in both formats.

Every template — built-in or a staff override from ``YAGU_NOTICE_TEMPLATES`` — renders in an
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: an override cannot reach Python
internals (``''.__class__`` raises ``SecurityError``) and a misspelt variable fails loudly
instead of printing an empty line on an official document.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, StrictUndefined, Template
from jinja2.ext import Extension
from jinja2.lexer import Token
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from notices.view import NoticeInput, build

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = {"html": "_html.j2", "typst": "_typst.j2"}      # format → its element macros

_ASCII_PUNCT = re.compile(r"[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]")
_BREAKS = re.compile(r"[ \t\r\n]+")


class TemplateDirMissing(Exception):
    pass


def typst_escape(text: str) -> str:
    """Typst markup printing exactly `text`: every ASCII punctuation character backslash-escaped,
    so nothing in it becomes markup, code, a comment, a label or a smart quote."""
    return _ASCII_PUNCT.sub(r"\\\g<0>", text)


def _typst_value(value: Any) -> Markup:
    """What `{{ value }}` prints in Typst: escaped, on one line (a blank line would end the
    paragraph); a macro's output (Markup) is already Typst."""
    if isinstance(value, Markup):
        return value
    return Markup(typst_escape(_BREAKS.sub(" ", str(value))))


def _html_text(text: str) -> str:
    return str(escape(text))


class _ContentText(Extension):
    """Literal text of content templates escaped for the output format (the format libraries and
    print.css are markup and pass as written)."""

    def filter_stream(self, stream: Iterable[Token]) -> Iterator[Token]:
        name = getattr(stream, "name", None) or ""
        if not name.endswith(".j2") or name in FORMATS.values():
            yield from stream
            return
        text = self.environment.text_escape  # type: ignore[attr-defined]
        for tok in stream:
            yield Token(tok.lineno, tok.type, text(tok.value)) if tok.type == "data" else tok


def _environment(loader: BaseLoader, fmt: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(loader=loader, autoescape=True, undefined=StrictUndefined,
                                        trim_blocks=True, lstrip_blocks=True, auto_reload=False,
                                        extensions=[_ContentText],
                                        finalize=_typst_value if fmt == "typst" else None)
    env.extend(text_escape=typst_escape if fmt == "typst" else _html_text)
    env.globals["m"] = env.get_template(FORMATS[fmt]).module
    return env


class NoticeRenderer:
    def __init__(self, template_dir: Path | str | None = None):
        override = template_dir or os.environ.get("YAGU_NOTICE_TEMPLATES") or None
        loaders = []
        if override:
            override = Path(override)
            if not override.is_dir():
                raise TemplateDirMissing(f"模板目录不存在：{override}（YAGU_NOTICE_TEMPLATES）")
            loaders.append(FileSystemLoader(str(override)))
        loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
        loader = ChoiceLoader(loaders)
        self.envs = {fmt: _environment(loader, fmt) for fmt in FORMATS}
        self._templates: dict[tuple[str, str], Template] = {}

    def template(self, fmt: str, name: str) -> Template:
        key = (fmt, name)
        if key not in self._templates:
            self._templates[key] = self.envs[fmt].get_template(name)
        return self._templates[key]

    def render(self, n: NoticeInput, fmt: str) -> str:
        return self.template(fmt, n.kind.template).render(**build(n))

    def render_html(self, n: NoticeInput) -> str:
        return self.render(n, "html")

    def render_typst(self, n: NoticeInput) -> str:
        return self.render(n, "typst")
