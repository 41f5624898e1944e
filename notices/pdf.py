"""PDF output: the notice's Typst markup (notices.render) compiled by the `typst` package.

Typst replaced WeasyPrint because the PDF was the bottleneck: bench/notices.py's one-time
notice took ~570 ms of CPU and ~570 KiB in WeasyPrint, ~22 ms and ~93 KiB here. Much of that
comes from reusing a compiler (a fresh one per document is about five times slower): fonts are
read once per process and Typst memoises across documents, so each thread keeps its own
compiler (one serves one call at a time; compiling releases the GIL).

Fonts come from Debian's fonts-noto-cjk (Noto Serif CJK SC for the body, Noto Sans CJK SC for
headings), found through fontconfig, embedded and subset in every PDF. PDF tags (the
accessibility structure) are left out: they add ~30% (the one-time notice grows from ~93 to
~122 KiB, over the 120 KiB target) and the text stays extractable without them.
"""
from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import typst

from notices.render import BUILTIN_TEMPLATES

FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC")
DEBIAN_FONTS = Path("/usr/share/fonts/opentype/noto")      # fonts-noto-cjk, if fontconfig cannot say


class PdfError(RuntimeError):
    pass


class FontsMissing(PdfError):
    pass


def _fc_match(family: str) -> Path | None:
    """The font file fontconfig gives for exactly this family, or None (fc-match always
    answers something, so its family is checked)."""
    try:
        out = subprocess.run(["fc-match", "-f", "%{family}\n%{file}", family], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    families, _, file = out.partition("\n")
    return Path(file) if family in families.split(",") and file else None


def font_dirs() -> list[str]:
    """The folders holding the notice's font families."""
    found = [_fc_match(f) for f in FAMILIES]
    dirs = {str(p.parent) for p in found if p is not None}
    if len(dirs) < len(FAMILIES) and DEBIAN_FONTS.is_dir():
        dirs.add(str(DEBIAN_FONTS))
    return sorted(dirs)


def load_fonts() -> typst.Fonts:
    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False, font_paths=font_dirs())
    missing = [f for f in FAMILIES if f not in set(fonts.families())]
    if missing:
        raise FontsMissing(f"生成 PDF 所需的字体缺失：{'、'.join(missing)}。请安装 Debian 软件包 fonts-noto-cjk"
                           "（运行 scripts/install-system-deps，或 apt-get install fonts-noto-cjk）。")
    return fonts


_fonts: typst.Fonts | None = None
_fonts_lock = threading.Lock()
_local = threading.local()
_forked = False


def _compiler() -> typst.Compiler:
    global _fonts
    if _forked:
        raise PdfError("本进程由已生成过 PDF 的进程 fork 而来，无法再生成 PDF（Typst 的线程不随 fork 复制）；"
                       "请以 spawn 方式启动子进程")
    compiler = getattr(_local, "compiler", None)
    if compiler is None:
        with _fonts_lock:
            if _fonts is None:
                _fonts = load_fonts()
        # root: the only folder Typst may read (it needs none; the markup arrives as input)
        compiler = _local.compiler = typst.Compiler(root=str(BUILTIN_TEMPLATES), font_paths=_fonts)
    return compiler


def _after_fork() -> None:
    """A child forked after Typst ran would hang in its first compile: refuse instead."""
    global _forked
    _forked = _fonts is not None


os.register_at_fork(after_in_child=_after_fork)


def typst_to_pdf(source: str) -> bytes:
    try:
        return _compiler().compile(input=source.encode("utf-8"), pdf_tags=False)
    except typst.TypstError as exc:
        raise PdfError(f"PDF 生成失败：{exc.message}") from exc
