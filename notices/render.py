"""HTML rendering of notices (Jinja2, autoescape on, sandboxed).

Every template — built-in or a staff override from ``YAGU_NOTICE_TEMPLATES`` / ``--templates`` —
renders in an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: an override cannot
reach Python internals (``''.__class__`` raises ``SecurityError``) and a misspelt variable fails
loudly instead of printing an empty line on an official document.
"""
from __future__ import annotations

import os
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notices.context import KINDS, NoticeContext, NoticeError, build_view

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"


class NoticeRenderer:
    def __init__(self, template_dir: Path | str | None = None):
        override = template_dir or os.environ.get("YAGU_NOTICE_TEMPLATES") or None
        loaders = []
        if override:
            override = Path(override)
            if not override.is_dir():
                raise NoticeError(f"模板目录不存在：{override}（YAGU_NOTICE_TEMPLATES 或 --templates）")
            loaders.append(FileSystemLoader(str(override)))
        loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
        self.override_dir = override
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, auto_reload=False)
        self._templates = {}

    def template(self, kind: str):
        if kind not in KINDS:
            raise NoticeError(f"kind: 未知的文书种类 {kind!r}；可用：{', '.join(KINDS)}")
        if kind not in self._templates:
            self._templates[kind] = self.env.get_template(f"{kind}.html.j2")
        return self._templates[kind]

    def render_html(self, ctx: NoticeContext) -> str:
        return self.template(ctx.kind).render(**build_view(ctx))


def render_html(ctx: NoticeContext, template_dir: Path | str | None = None) -> str:
    return NoticeRenderer(template_dir).render_html(ctx)
