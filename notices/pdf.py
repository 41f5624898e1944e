"""PDF output through WeasyPrint; fonts are Debian's fonts-noto-cjk (Noto Serif/Sans CJK SC)."""
from __future__ import annotations

import logging

from notices.context import NoticeContext
from notices.render import BUILTIN_TEMPLATES, NoticeRenderer

# WeasyPrint logs every unsupported CSS property at WARNING; notices are ours, keep the CLI quiet.
logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)

_font_config = None


def html_to_pdf(html: str) -> bytes:
    global _font_config
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    if _font_config is None:
        _font_config = FontConfiguration()
    return HTML(string=html, base_url=str(BUILTIN_TEMPLATES)).write_pdf(font_config=_font_config)


def render_pdf(ctx: NoticeContext, renderer: NoticeRenderer | None = None) -> bytes:
    return html_to_pdf((renderer or NoticeRenderer()).render_html(ctx))
