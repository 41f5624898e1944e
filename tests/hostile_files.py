"""Generators of hostile import files (issue 9), for the intake tests and for HTTP-level tests
that measure the server's memory while it refuses them.

Each builder returns the file's bytes (or, for the largest, an iterator of chunks to stream),
built cheaply: zip parts are written through `zipfile` in chunks, so a 100 MB shared string
costs a few hundred kilobytes of memory and well under a second.
"""
from __future__ import annotations

import io
import zipfile
from typing import Iterable, Iterator
from xml.sax.saxutils import escape

MiB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
DEFAULT_HEADER = ("统一社会信用代码", "企业名称")


def _column_letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def inline_row(n: int, values: Iterable[str]) -> str:
    cells = "".join(f'<c r="{_column_letter(i)}{n}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
                    for i, v in enumerate(values))
    return f'<row r="{n}">{cells}</row>'


def sheet_xml(rows: Iterable[str], dimension: str | None = None, prolog: str = "") -> Iterator[bytes]:
    """A worksheet part, in chunks: `rows` are <row> elements as text."""
    yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
           f'<worksheet xmlns="{MAIN}">'
           + (f'<dimension ref="{dimension}"/>' if dimension else "") + "<sheetData>").encode()
    buf: list[str] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= 1000:
            yield "".join(buf).encode()
            buf.clear()
    yield ("".join(buf) + "</sheetData></worksheet>").encode()


def xlsx(sheets: list[tuple[str, Iterable[bytes]]], shared_strings: Iterable[bytes] | None = None,
         *, parts: dict[str, bytes] | None = None) -> bytes:
    """A minimal .xlsx package. `parts` replaces or adds raw parts (e.g. a hostile workbook.xml)."""
    parts = dict(parts or {})
    sheet_list = "".join(f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, (name, _) in enumerate(sheets, start=1))
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                   for i in range(1, len(sheets) + 1))
    if shared_strings is not None:
        rels += f'<Relationship Id="rIdS" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SML}.worksheet+xml"/>'
                        for i in range(1, len(sheets) + 1))
    fixed = {
        "[Content_Types].xml": f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{_CT}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}.sheet.main+xml"/>{overrides}</Types>',
        "_rels/.rels": f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" '
        f'xmlns:r="{_REL}"><sheets>{sheet_list}</sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<Relationships xmlns="{_PKG}">{rels}</Relationships>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in fixed.items():
            if name not in parts:
                zf.writestr(name, text)
        for name, data in parts.items():
            zf.writestr(name, data)
        streams = [(f"xl/worksheets/sheet{i}.xml", chunks) for i, (_, chunks) in enumerate(sheets, start=1)]
        if shared_strings is not None:
            streams.append(("xl/sharedStrings.xml", shared_strings))
        for name, chunks in streams:
            with zf.open(name, "w", force_zip64=True) as f:
                for chunk in chunks:
                    f.write(chunk)
    return buf.getvalue()


# --- the attacks ----------------------------------------------------------------------------------


def dimension_bomb(header: Iterable[str] = DEFAULT_HEADER, row: Iterable[str] = ("x", "y")) -> bytes:
    """A 2 KB workbook declaring A1:XFD1048576 (a reader trusting it builds 16,384-wide rows
    for a million rows)."""
    return xlsx([("企业信息", sheet_xml([inline_row(1, header), inline_row(2, row)],
                                    dimension="A1:XFD1048576"))])


def shared_string_bomb(chars: int = 100 * MiB, header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    """A row whose first cell is one shared string of `chars` characters (100 MB unpacked from
    about 100 KB)."""
    def strings() -> Iterator[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="1" uniqueCount="1"><si><t>'.encode()
        block = b"A" * MiB
        for _ in range(chars // MiB):
            yield block
        yield b"A" * (chars % MiB) + b"</t></si></sst>"
    rows = [inline_row(1, header), '<row r="2"><c r="A2" t="s"><v>0</v></c>'
            '<c r="B2" t="inlineStr"><is><t>资阳企业</t></is></c></row>']
    return xlsx([("企业信息", sheet_xml(rows))], strings())


def billion_laughs(part: str = "sheet") -> bytes:
    """Nested entities expanding to 10^9 'lol's, in the worksheet, the shared strings or the
    workbook part."""
    dtd = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)) + "]>"
    laugh = f'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    if part == "sheet":
        return xlsx([("企业信息", sheet_xml([laugh], prolog=dtd))])
    if part == "strings":
        strings = [f'<?xml version="1.0"?>{dtd}<sst xmlns="{MAIN}"><si><t>&lol9;</t></si></sst>'.encode()]
        return xlsx([("企业信息", sheet_xml(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>']))], strings)
    workbook = (f'<?xml version="1.0"?>{dtd}<workbook xmlns="{MAIN}" xmlns:r="{_REL}"><sheets>'
                f'<sheet name="&lol9;" sheetId="1" r:id="rId1"/></sheets></workbook>')
    return xlsx([("企业信息", sheet_xml([]))], parts={"xl/workbook.xml": workbook.encode()})


def undefined_entity() -> bytes:
    return xlsx([("企业信息", sheet_xml(['<row r="1"><c r="A1" t="inlineStr"><is><t>&nope;</t></is></c></row>']))])


def truncated_sheet(header: Iterable[str] = DEFAULT_HEADER, rows: int = 200) -> bytes:
    """A worksheet cut off in the middle of a row."""
    xml = b"".join(sheet_xml([inline_row(1, header)] +
                             [inline_row(n, [f"9151200{n:011d}", f"企业{n}"]) for n in range(2, rows + 2)]))
    return xlsx([("企业信息", [xml[: len(xml) // 2]])])


def wide_row(cells: int = 2_000_000, header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    """One row of `cells` cells (a reader that parses a row whole holds them all)."""
    def rows() -> Iterator[str]:
        yield inline_row(1, header)
        yield '<row r="2">'
        for i in range(0, cells, 1000):
            yield "".join(f'<c r="{_column_letter(j % 16384)}2"><v>{j}</v></c>' for j in range(i, i + 1000))
        yield "</row>"
    return xlsx([("企业信息", sheet_xml(rows()))])


def invalid_rows_xlsx(rows: int = 1_048_575, header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    """A full sheet of rows that all fail (a bad 统一社会信用代码)."""
    header = list(header)
    body = (f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>bad{n}</t></is></c></row>' for n in range(2, rows + 2))
    return xlsx([("企业信息", sheet_xml([inline_row(1, header), *body]))])


def huge_csv_field(chars: int = 200_000, header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    """A CSV field over the csv module's limit (131,072 characters)."""
    return (",".join(header) + "\n" + "x" * chars + ",y\n").encode("utf-8")


def invalid_rows_csv(rows: int = 1_048_575, header: Iterable[str] = DEFAULT_HEADER) -> Iterator[bytes]:
    """A CSV of `rows` invalid rows, in chunks (join them for an in-memory file)."""
    yield ("\ufeff" + ",".join(header) + "\n").encode("utf-8")
    for start in range(0, rows, 10_000):
        yield "".join(f"bad{n},企业{n}\n" for n in range(start, min(rows, start + 10_000))).encode("utf-8")


def nul_csv(header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    return (",".join(header) + "\n91512000MA62XY001U,资阳\x00企业\n").encode("utf-8")


def undecodable_csv(header: Iterable[str] = DEFAULT_HEADER) -> bytes:
    """Bytes valid in neither UTF-8 nor GB18030, on line 3."""
    return (",".join(header) + "\n91512000MA62XY001U,资阳企业\n").encode("utf-8") + b"\xff\x80\xff,x\n"
