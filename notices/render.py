"""HTML rendering of notices (Jinja2, autoescape on, sandboxed).

Every template — built-in or a staff override from ``YAGU_NOTICE_TEMPLATES`` — renders in an
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: an override cannot reach Python
internals (``''.__class__`` raises ``SecurityError``) and a misspelt variable fails loudly
instead of printing an empty line on an official document.
"""
from __future__ import annotations

import os
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notices.view import NoticeInput, build

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"


class TemplateDirMissing(Exception):
    pass


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
        self.env = ImmutableSandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=True,
                                                 undefined=StrictUndefined, trim_blocks=True,
                                                 lstrip_blocks=True, auto_reload=False)
        self._templates: dict[str, Template] = {}

    def template(self, name: str) -> Template:
        if name not in self._templates:
            self._templates[name] = self.env.get_template(name)
        return self._templates[name]

    def render_html(self, n: NoticeInput) -> str:
        return self.template(n.kind.template).render(**build(n))
