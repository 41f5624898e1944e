"""Reading untrusted spreadsheet uploads (.xlsx, .csv) into rows, within limits.

An upload is hostile until read: a few kilobytes of zip can declare a sheet 16,384 columns wide,
unpack to gigabytes, or carry XML entity bombs. So an .xlsx is checked with `zipfile` before any
XML is parsed (every part's unpacked size and compression ratio), small parts are parsed with
defusedxml, and worksheets and shared strings are streamed through expat with DTDs refused: a
row keeps only the cells of the columns asked for, a cell keeps at most `max_cell_chars + 1`
characters, and the declared dimension is never used. Nothing here knows what the columns
mean; `store.intake` does.

Every sheet yields rows as ``(row number as Excel shows it, {column index: value})`` with empty
cells left out; values are str, int, float, bool or datetime. A file that cannot be read at all
raises ValidationFailed whose message starts with "文件无法读取".
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import ParseError, fromstring
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel

from store.errors import RowProblem, ValidationFailed

MiB = 1024 * 1024
CSV_SHEET = "CSV"
_CHUNK = 64 * 1024
EXCEL_MAX_COLUMNS = 16384


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on one import file. The caller reads them from the environment
    (`IntakeLimits.from_env`: YAGU_MAX_IMPORT_ROWS, YAGU_MAX_IMPORT_PROBLEMS, …)."""

    max_rows: int = 200_000             # data rows read from a file; reading stops past it
    max_problems: int = 200             # problems listed in a report; the rest are counted
    max_cell_chars: int = 1000          # longest cell text
    max_part_bytes: int = 64 * MiB      # an .xlsx part kept in memory (shared strings, styles)
    max_sheet_bytes: int = 512 * MiB    # an .xlsx worksheet, unpacked (streamed)
    max_total_bytes: int = 1024 * MiB   # all parts of an .xlsx, unpacked
    max_ratio: int = 100                # unpacked : packed size of a part over 1 MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "IntakeLimits":
        """Defaults overridden by YAGU_MAX_IMPORT_<FIELD> (e.g. YAGU_MAX_IMPORT_ROWS)."""
        names = {f.name: "YAGU_" + f.name.upper().replace("MAX_", "MAX_IMPORT_", 1) for f in fields(cls)}
        return cls(**{name: int(env[var]) for name, var in names.items() if env.get(var)})


def _unreadable(what: str, sheet: str | None = None, row: int | None = None) -> ValidationFailed:
    return ValidationFailed([RowProblem(f"文件无法读取：{what}", sheet=sheet, row=row)])


def _mb(n: int) -> str:
    return f"{n / MiB:.0f} MB" if n >= MiB else f"{n} 字节"


# --- CSV ------------------------------------------------------------------------------------------


class CsvSheet:
    """A CSV file as one sheet, decoded and parsed record by record (the text is never held
    whole: a 20 MB upload would take 80 MB as one string)."""

    name = CSV_SHEET

    def __init__(self, data: bytes):
        self._data = data
        self._encoding = _encoding(data)
        self.stray: set[int] = set()

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        text = io.TextIOWrapper(io.BytesIO(self._data), encoding=self._encoding, newline="")
        reader = csv.reader(text)
        n = 0
        while True:
            n += 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error:
                raise _unreadable(f"不是有效的 CSV（字段超过 {csv.field_size_limit()} 个字符，"
                                 "或引号不成对）", CSV_SHEET, n) from None
            yield n, record

    def header(self) -> tuple[int, dict[int, Any]] | None:
        for n, record in self._records():
            cells = {i: v for i, v in enumerate(record) if v.strip()}
            if cells:
                return n, cells
        return None

    def rows(self, columns: frozenset[int], after: int) -> Iterator[tuple[int, dict[int, Any]]]:
        stray = self.stray
        for n, record in self._records():
            if n <= after:
                continue
            cells = {}
            for i, v in enumerate(record):      # the record's own length: a wide header costs nothing
                if v:
                    if i in columns:
                        cells[i] = v
                    else:
                        stray.add(i)
            yield n, cells


def _encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (Excel's "CSV" on Chinese Windows); checked
    chunk by chunk. Neither: the line of the first byte that neither can read."""
    failed_at = 0
    view = memoryview(data)
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        at = 0
        try:
            for at in range(0, len(data), _CHUNK):
                decoder.decode(view[at:at + _CHUNK])
            decoder.decode(b"", True)
            return encoding
        except UnicodeDecodeError as e:
            failed_at = max(failed_at, at + e.start)
    line = data.count(b"\n", 0, failed_at) + 1
    raise _unreadable("含有无法识别的字符，请另存为 UTF-8 编码的 CSV", CSV_SHEET, line)


# --- XLSX -----------------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_ROW, _C, _V, _T, _RPH, _SI, _NUMFMT, _CELLXFS, _XF = (
    f"{_MAIN} {t}" for t in ("row", "c", "v", "t", "rPh", "si", "numFmt", "cellXfs", "xf"))
# The workbook part and relationship parts are parsed as trees (defusedxml): a few kilobytes in
# any real file, and a tree costs several times its text.
_TREE_BYTES = 4 * MiB
# Locale-dependent built-in date formats (ECMA-376 §18.8.30), used by Chinese Excel and WPS.
_EAST_ASIAN_DATES = frozenset([*range(27, 37), *range(50, 59)])
_DTD_REFUSED = "含有 DTD 或实体声明（Excel 文件不会包含，已拒绝）"
_EXPAT_ERRORS = {
    expat.errors.XML_ERROR_NO_ELEMENTS: "内容不完整（文件被截断）",
    expat.errors.XML_ERROR_UNCLOSED_TOKEN: "内容不完整（文件被截断）",
    expat.errors.XML_ERROR_UNDEFINED_ENTITY: "引用了未定义的实体",
}


class _DtdRefused(Exception):
    pass


def _refuse_dtd(*_: Any) -> None:
    # No spreadsheet part has a DTD; refusing it removes entity expansion (billion laughs)
    # and external entities at once, as defusedxml does.
    raise _DtdRefused


def _expat() -> expat.XMLParserType:
    p = expat.ParserCreate(namespace_separator=" ")
    p.buffer_text = True
    p.StartDoctypeDeclHandler = _refuse_dtd
    p.EntityDeclHandler = _refuse_dtd
    return p


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else -1


def _column_index(ref: str) -> int:
    """0-based column of a cell reference such as "AB12"."""
    n = 0
    for ch in ref:
        if ch.isdigit():
            break
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


class Workbook:
    """An .xlsx file, checked part by part before any XML is parsed."""

    def __init__(self, data: bytes, limits: IntakeLimits):
        self.limits = limits
        self._zip = self._open(data)
        book = self._office_document()
        rels = self._relations(book)
        root = self._xml(book)
        pr = root.find(f"{{{_MAIN}}}workbookPr")
        self.epoch = MAC_EPOCH if pr is not None and pr.get("date1904") in ("1", "true") else WINDOWS_EPOCH
        by_type = {kind.rsplit("/", 1)[-1]: target for kind, target in rels.values()}
        self.date_styles = self._styles(by_type.get("styles"))
        self.strings = self._strings(by_type.get("sharedStrings"))
        self.sheets: list[XlsxSheet] = []
        for s in root.iter(f"{{{_MAIN}}}sheet"):
            kind, target = rels.get(s.get(f"{{{_REL}}}id"), ("", ""))
            if kind.endswith("/worksheet"):
                self.sheets.append(XlsxSheet(self, (s.get("name") or "").strip(), target))

    # -- the zip container --
    def _open(self, data: bytes) -> zipfile.ZipFile:
        lim = self.limits
        # The central directory is parsed whole by zipfile: bound it before it is (46 bytes
        # per entry at least; a real workbook has a few dozen entries).
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
        if end >= 0 and len(data) >= end + 22 and struct.unpack_from("<I", data, end + 12)[0] > MiB:
            raise _unreadable("压缩包目录过大（条目过多）")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            raise ValidationFailed([RowProblem("不是有效的 Excel（.xlsx）文件，请用导入模板另存为 .xlsx")]) from None
        total = 0
        for info in zf.infolist():
            size, name = info.file_size, info.filename[:80]
            if size > lim.max_sheet_bytes:
                raise _unreadable(f"{name} 解压后 {_mb(size)}，超过上限 {_mb(lim.max_sheet_bytes)}")
            if size > MiB and size > lim.max_ratio * max(info.compress_size, 1):
                raise _unreadable(f"{name} 压缩比 {size // max(info.compress_size, 1)}:1，"
                                 f"超过上限 {lim.max_ratio}:1")
            total += size
        if total > lim.max_total_bytes:
            raise _unreadable(f"解压后共 {_mb(total)}，超过上限 {_mb(lim.max_total_bytes)}")
        return zf

    def _info(self, part: str, cap: int) -> zipfile.ZipInfo | None:
        try:
            info = self._zip.getinfo(part)
        except KeyError:
            return None
        if info.file_size > cap:
            raise _unreadable(f"{part[:80]} 解压后 {_mb(info.file_size)}，超过上限 {_mb(cap)}")
        return info

    def stream(self, part: str, cap: int) -> Iterator[bytes]:
        """The unpacked bytes of a part, chunk by chunk (zipfile stops at the declared size)."""
        info = self._info(part, cap)
        if info is None:
            raise _unreadable(f"缺少 {part[:80]}")
        try:
            with self._zip.open(info) as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError):
            raise _unreadable(f"{part[:80]} 已损坏或加密") from None

    def _xml(self, part: str):
        """A small part, parsed whole with defusedxml (no DTD, no entities)."""
        data = b"".join(self.stream(part, _TREE_BYTES))
        try:
            return fromstring(data, forbid_dtd=True)
        except (DTDForbidden, EntitiesForbidden):
            raise _unreadable(f"{part[:80]} {_DTD_REFUSED}") from None
        except (ParseError, DefusedXmlException):
            raise _unreadable(f"{part[:80]} 不是有效的 XML") from None

    def _relations(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id → (type, target part) of a part."""
        folder, name = posixpath.split(part)
        rels_part = posixpath.join(folder, "_rels", name + ".rels")
        if self._info(rels_part, _TREE_BYTES) is None:
            return {}
        out = {}
        for rel in self._xml(rels_part).iter(f"{{{_PKG}}}Relationship"):
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External" or not target:
                continue
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            out[rel.get("Id") or ""] = (rel.get("Type") or "", path)
        return out

    def _office_document(self) -> str:
        for kind, target in self._relations("").values():
            if kind.endswith("/officeDocument"):
                return target
        return "xl/workbook.xml"

    def _parse(self, part: str, start: Callable, end: Callable | None = None,
               text: Callable | None = None) -> None:
        """Stream a part kept in memory through expat with these handlers."""
        p = _expat()
        p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, text
        for _ in _feed(p, part, self.stream(part, self.limits.max_part_bytes)):
            pass

    def _styles(self, part: str | None) -> frozenset[int]:
        """Indexes of the cell styles that show a number as a date."""
        if part is None or self._info(part, self.limits.max_part_bytes) is None:
            return frozenset()
        custom: dict[int, str | None] = {}
        formats: list[int] = []         # number format of each cell style (cellXfs/xf)
        in_cell_styles = False

        def start(name: str, attrs: dict) -> None:
            nonlocal in_cell_styles
            if name == _NUMFMT:
                custom[_int(attrs.get("numFmtId"))] = attrs.get("formatCode")
            elif name == _CELLXFS:
                in_cell_styles = True
            elif name == _XF and in_cell_styles:
                formats.append(_int(attrs.get("numFmtId")))

        def end(name: str) -> None:
            nonlocal in_cell_styles
            if name == _CELLXFS:
                in_cell_styles = False

        self._parse(part, start, end)
        dates = set()
        for fmt_id in set(formats):
            code = custom.get(fmt_id, BUILTIN_FORMATS.get(fmt_id))
            if (fmt_id in _EAST_ASIAN_DATES or is_date_format(code)) and not is_timedelta_format(code):
                dates.add(fmt_id)
        return frozenset(i for i, fmt_id in enumerate(formats) if fmt_id in dates)

    def _strings(self, part: str | None) -> list[str]:
        """The shared strings, each cut to max_cell_chars + 1 characters."""
        if part is None or self._info(part, self.limits.max_part_bytes) is None:
            return []
        cap = self.limits.max_cell_chars + 1
        out: list[str] = []
        buf: list[str] = []
        size = depth_rph = 0
        collecting = False

        def start(name: str, attrs: dict) -> None:
            nonlocal size, collecting, depth_rph
            if name == _SI:
                buf.clear()
                size = 0
            elif name == _T:
                collecting = not depth_rph
            elif name == _RPH:
                depth_rph += 1

        def end(name: str) -> None:
            nonlocal collecting, depth_rph
            if name == _SI:
                out.append("".join(buf)[:cap])
            elif name == _T:
                collecting = False
            elif name == _RPH:
                depth_rph -= 1

        def text(data: str) -> None:
            nonlocal size
            if collecting and size < cap:
                buf.append(data)
                size += len(data)

        self._parse(part, start, end, text)
        return out


def _feed(p: expat.XMLParserType, part: str, chunks: Iterator[bytes]) -> Iterator[None]:
    """Push chunks into an expat parser, yielding after each; XML errors become "文件无法读取"."""
    try:
        for chunk in chunks:
            p.Parse(chunk, False)
            yield
        p.Parse(b"", True)
        yield
    except _DtdRefused:
        raise _unreadable(f"{part[:80]} {_DTD_REFUSED}") from None
    except expat.ExpatError as e:
        what = _EXPAT_ERRORS.get(expat.errors.messages.get(e.code, ""), "XML 格式错误")
        raise _unreadable(f"{part[:80]} {what}（第{e.lineno}行第{e.offset + 1}列）") from None


class XlsxSheet:
    """One worksheet, streamed: only the cells of the requested columns are kept."""

    def __init__(self, book: Workbook, name: str, part: str):
        self.name, self._book, self._part = name, book, part
        self.stray: set[int] = set()

    def header(self) -> tuple[int, dict[int, Any]] | None:
        return next(self._rows(None, 0), None)

    def rows(self, columns: frozenset[int], after: int) -> Iterator[tuple[int, dict[int, Any]]]:
        return self._rows(columns, after)

    def _rows(self, columns: frozenset[int] | None, after: int) -> Iterator[tuple[int, dict[int, Any]]]:
        book, part = self._book, self._part
        strings, dates, epoch = book.strings, book.date_styles, book.epoch
        cap = book.limits.max_cell_chars + 1
        stray = self.stray
        done: list[tuple[int, dict[int, Any]]] = []
        cells: dict[int, Any] = {}
        buf: list[str] = []
        rowno = col = size = depth_rph = 0
        ctype = style = None
        collecting = keep = False
        columns_of: dict[str, int] = {}

        def start(name: str, attrs: dict) -> None:
            nonlocal rowno, col, size, ctype, style, collecting, keep, depth_rph, cells
            if name == _C:
                ref = attrs.get("r")
                if ref:
                    letters = ref.rstrip("0123456789")
                    col = columns_of.get(letters)
                    if col is None:
                        col = _column_index(letters)
                        if col < EXCEL_MAX_COLUMNS:
                            columns_of[letters] = col
                else:
                    col += 1
                ctype, style = attrs.get("t"), attrs.get("s")
                keep = columns is None or col in columns
                buf.clear()
                size = 0
            elif name == _V or name == _T:
                collecting = not depth_rph
            elif name == _ROW:
                r = attrs.get("r")
                try:
                    rowno = int(r) if r else rowno + 1
                except ValueError:
                    raise _unreadable(f"{part[:80]} 的行号“{r[:20]}”无效") from None
                col = -1
                cells = {}
            elif name == _RPH:
                depth_rph += 1

        def end(name: str) -> None:
            nonlocal collecting, depth_rph
            if name == _C:
                if not size or rowno <= after:
                    return
                if keep:
                    cells[col] = _value("".join(buf)[:cap], ctype, style, strings, dates, epoch, part)
                elif col < EXCEL_MAX_COLUMNS:
                    stray.add(col)
            elif name == _V or name == _T:
                collecting = False
            elif name == _ROW:
                if cells and rowno > after:
                    done.append((rowno, cells))
            elif name == _RPH:
                depth_rph -= 1

        def text(data: str) -> None:
            nonlocal size
            if collecting and size < cap:
                buf.append(data)
                size += len(data)

        p = _expat()
        p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, text
        for _ in _feed(p, part, book.stream(part, book.limits.max_sheet_bytes)):
            if done:
                yield from done
                done.clear()


def _value(text: str, ctype: str | None, style: str | None, strings: list[str],
           dates: frozenset[int], epoch: datetime, part: str) -> Any:
    """A cell's value from its type attribute (absent = number) and text."""
    if ctype is None or ctype == "n":
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return text
        if style is not None and style.isdigit() and int(style) in dates:
            try:
                moment = from_excel(number, epoch)
            except (OverflowError, ValueError):
                return number
            return moment if isinstance(moment, datetime) else number
        return number
    if ctype == "s":
        try:
            return strings[int(text)]
        except (ValueError, IndexError):
            raise _unreadable(f"{part[:80]} 引用了不存在的共享字符串“{text[:20]}”") from None
    if ctype == "b":
        return text.strip() in ("1", "true")
    if ctype == "d":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return text
    return text     # inlineStr, str (a formula's text), e (an error such as #N/A)


Sheet = CsvSheet | XlsxSheet


def open_sheets(data: bytes, suffix: str, limits: IntakeLimits) -> list[Sheet]:
    """The sheets of an upload, in file order (a CSV is one sheet named "CSV")."""
    if suffix == ".csv":
        return [CsvSheet(data)]
    return Workbook(data, limits).sheets
