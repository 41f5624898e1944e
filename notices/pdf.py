"""PDF output through WeasyPrint; fonts are Debian's fonts-noto-cjk (Noto Serif/Sans CJK SC)."""
from __future__ import annotations

import logging

from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

from notices.render import BUILTIN_TEMPLATES

# WeasyPrint logs every unsupported CSS property at WARNING; notices are ours, keep it quiet.
logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)

_font_config: FontConfiguration | None = None


def html_to_pdf(html: str) -> bytes:
    global _font_config
    if _font_config is None:
        _font_config = FontConfiguration()
    return HTML(string=html, base_url=str(BUILTIN_TEMPLATES)).write_pdf(font_config=_font_config)
