"""Exports of a window, on SQLite and PostgreSQL: no cell a spreadsheet would run as a formula
(half- and full-width = + - @), text cells typed as text in .xlsx (no visible apostrophe), every
CSV field quoted; awards.xlsx grows linearly with its rows."""
from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import update

from engine.profile import parse_profile
from store import applications as A
from store import awards, exports, rulesets
from store.bulk import insert_rows
from store.models import Award, Window, utcnow
from store_fixtures import (  # noqa: F401  (fixtures)
    AFTER_H1, IN_H1, db, evaluate, grant_profile, open_h1, store_url, submit_all,
)

DANGEROUS = ["＝1+1", "=HYPERLINK(\"http://x\",\"点击\")", "-2+3", "+SUM(A1:A9)", "@cmd", "＋1", "－1",
             "＠SUM(1)", "资阳普通企业有限公司"]


def _rows_of_csv(data: bytes) -> tuple[str, list[list[str]]]:
    text = data.decode("utf-8-sig")
    return text, list(csv.reader(io.StringIO(text, newline="")))


def _assert_every_field_quoted(text: str) -> None:
    field = r'"(?:[^"]|"")*"'
    rebuilt = "".join(re.findall(rf'(?:{field})(?:,{field})*\r\n|\r\n', text, flags=re.S))
    assert rebuilt == text, "a CSV field is not quoted"


def test_exports_neutralise_formulas_and_keep_text_as_text(db):
    open_h1(db)
    submit_all(db, "2026-H1", [grant_profile(i, name=n) for i, n in enumerate(DANGEROUS, start=1)])
    evaluate(db, "2026-H1")
    for final in (False, True):
        if final:
            awards.publish(db, "2026-H1", today=AFTER_H1)
            awards.close_window(db, "2026-H1", reason="测试", today=AFTER_H1)
        for export in (exports.export_awards, exports.export_decisions):
            text, rows = _rows_of_csv(export(db, "2026-H1", "csv"))
            _assert_every_field_quoted(text)
            body = rows[2:2 + len(DANGEROUS)]
            names = [r[2] if export is exports.export_awards else r[1] for r in body]
            assert sorted(names) == sorted("'" + n if n[0] in "=+-@\t\r＝＋－＠" else n for n in DANGEROUS)
            wb = load_workbook(io.BytesIO(export(db, "2026-H1", "xlsx")))
            ws = wb.active
            cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
            assert not [c for c in cells if c.data_type == "f"]
            col = 3 if export is exports.export_awards else 2
            xlsx_names = [ws.cell(row=r, column=col).value for r in range(3, 3 + len(DANGEROUS))]
            assert sorted(xlsx_names) == sorted(DANGEROUS)                  # as written, no apostrophe
            assert all(ws.cell(row=r, column=col).data_type == "s" for r in range(3, 3 + len(DANGEROUS)))
            with zipfile.ZipFile(io.BytesIO(export(db, "2026-H1", "xlsx"))) as z:
                sheet = z.read("xl/worksheets/sheet1.xml").decode()
            assert "<f>" not in sheet and "<f " not in sheet


def test_money_is_whole_yuan_or_two_decimals_and_a_reviewed_refusal_has_no_amount(db):
    from store import cases
    from store import windows as W

    open_h1(db)
    subs = submit_all(db, "2026-H1", [grant_profile(1), grant_profile(2), grant_profile(3, certs=2)])
    evaluate(db, "2026-H1")
    cert = grant_profile(2)["device_registrations"][0]["certificate_no"]
    cases.review(db, subs[1].application_id, "device-registration-grant", cert, "override", "ineligible",
                 "经核查，注册证复印件与原件不符", actor="经办人")
    counts = W.get_window(db, "2026-H1").counts          # engine verdicts and reviewed verdicts apart
    assert (counts.grant_decisions, counts.grant_decisions_reviewed, counts.overridden) == (
        {"eligible": 4}, {"eligible": 3, "ineligible": 1}, 1)
    _, rows = _rows_of_csv(exports.export_decisions(db, "2026-H1", "csv"))
    overridden = next(r for r in rows if len(r) > 4 and r[4] == cert)
    assert overridden[5:] == ["符合条件", "不符合条件", "", "", "经核查，注册证复印件与原件不符", "经办人"]
    assert all(r[9:] == ["", ""] for r in rows[2:5] if r[4] != cert)     # not reviewed: no reason
    assert rows[-2:] == [["符合条件", "3"], ["不符合条件", "1"]] and rows[-3] == exports.DECISION_TOTAL_HEADERS
    for final in (False, True):
        if final:
            awards.publish(db, "2026-H1", today=AFTER_H1)
            awards.close_window(db, "2026-H1", reason="测试", today=AFTER_H1)
        text, rows = _rows_of_csv(exports.export_awards(db, "2026-H1", "csv"))
        assert ".0\"" not in text
        assert {r[8] for r in rows[2:5]} == {"300000"}                           # not 300000.0
        totals = rows[rows.index(exports.AWARD_TOTAL_HEADERS) + 1:]
        assert totals[0][:3] == ["合计", "3", "900000"]                          # the count in its own column
        wb = load_workbook(io.BytesIO(exports.export_awards(db, "2026-H1", "xlsx")))
        assert wb.sheetnames == ["兑现名单" if final else "拟支持名单"]
        ws = wb.active              # amounts grouped by thousands; printed landscape, headers on each page
        assert ws.cell(row=3, column=9).value == 300000 and ws.cell(row=3, column=9).number_format == "#,##0"
        assert ws.page_setup.orientation == "landscape" and ws.print_title_rows == "$2:$2"
        assert ws.cell(row=3, column=1).value == 1 and ws.cell(row=3, column=1).number_format == "0"    # 序号
        # the columns are as wide as what they hold: the enterprise's name is not cut off
        name = ws.cell(row=3, column=3).value
        assert ws.column_dimensions["C"].width >= 2 * len(name)
        labels = [r[0].value for r in ws.iter_rows(min_row=3) if isinstance(r[0].value, str)]   # the totals' rows
        assert labels and all(ws.column_dimensions["A"].width >= exports._width(x) for x in labels), labels
    assert exports.csv_bytes("t", ["金额"], [[500000.5], [500000.0]]).decode("utf-8-sig").split("\r\n")[2:4] == [
        '"500000.50"', '"500000"']


def test_tab_and_carriage_return_starts_are_neutralised_too():
    assert [exports.neutralise(v) for v in ("\t=1", "\r=1", "＝1", "a=1", 5)] == ["'\t=1", "'\r=1", "'＝1", "a=1", 5]


def _closed_window_with_awards(db, window_id: str, n: int, base: int) -> None:
    open_h1(db, window_id)
    registry = rulesets.current().registry
    results = A.ingest(db, window_id, [A.Intake.of(parse_profile(grant_profile(base + i), registry))
                                       for i in range(n)], today=IN_H1)
    rows = [("device-registration-grant", f"{window_id}-{i:06d}", window_id, r.uscc, r.application_id, i,
             Decimal("300000.00"), True, "II", "self_developed", utcnow()) for i, r in enumerate(results)]
    with db.session() as s:
        insert_rows(s.connection(), Award.__table__,
                    ("benefit_id", "subject_id", "window_id", "uscc", "application_id", "evaluation_id", "amount_cny",
                     "amount_provisional", "device_class", "origin", "awarded_at"), rows)
        s.execute(update(Window).where(Window.id == window_id).values(state="closed", closed_at=utcnow(),
                                                                      evaluated_at=utcnow()))


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_awards_xlsx_of_ten_thousand_rows_is_linear(tmp_path):
    from store.db import Database

    db = Database(f"sqlite:///{tmp_path / 'big.db'}")
    db.upgrade()
    _closed_window_with_awards(db, "big", 10_000, 0)
    exports.export_awards(db, "big", "csv")                 # warm: the archived rules, the caches
    csv_s = _seconds(lambda: exports.export_awards(db, "big", "csv"))
    out = []
    xlsx_s = _seconds(lambda: out.append(exports.export_awards(db, "big", "xlsx")))
    ws = load_workbook(io.BytesIO(out[0]), read_only=True).active
    assert sum(1 for _ in ws.iter_rows()) >= 10_002
    # Both read the same 10,000 ledger rows; writing them as .xlsx costs a few times the CSV
    # (a quadratic writer took 50 times as long at 8,000 rows).
    print(f"awards export of 10,000 rows: csv {csv_s:.2f} s, xlsx {xlsx_s:.2f} s, ratio {xlsx_s / csv_s:.1f}")
    assert xlsx_s < 20 * csv_s
    db.dispose()
