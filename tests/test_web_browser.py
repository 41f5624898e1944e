"""Chromium (Debian's, driven by Playwright) uses a real `yagu serve` as its users do: an
enterprise clerk on a phone (390 px) and park staff on a desktop (1280 px).

One server and one browser for the module. Screenshots of every step are kept in
$YAGU_ARTIFACTS or, by default, browser-artifacts/ under the test data directory (printed).

The server reads the real clock; where the story needs days to pass (the acceptance period
ending, a 补正 deadline going by), the test moves the recorded dates into the past instead.
"""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy import create_engine, text

from api.testing import REPO, LiveServer
from engine import load_rulebook
from engine.profile import shanghai_today
from engine.uscc import make_uscc

pytestmark = pytest.mark.browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--lang=zh-CN"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
TODAY = shanghai_today()
YEAR = (TODAY - timedelta(days=60)).year
GRANT = "Ⅱ类、Ⅲ类医疗器械产品注册证资金支持"
TAX_TITLES = ("小型微利企业所得税优惠", "高新技术企业减按15%", "西部大开发", "研发费用", "留抵退税")
# Reader-facing text never shows these (issue 10: raw values, field paths, ISO dates, English).
LEAKS = ("self_developed", "introduced", "needs_info", "ineligible", "eligible", "device_registrations",
         "in_park", "profile.", "None", "True", "False", "null", "必须是", "字符串", "Traceback")
ENTERPRISES = {
    "A": ("资阳市牙谷精密齿科器械有限公司", f"川械注准{YEAR}2170031"),
    "B": ("四川牙谷义齿科技有限公司", f"国械注准{YEAR}3170042"),
    "C": ("资阳高新区齿研生物材料有限公司", f"川械注准{YEAR}2170055"),
    "D": ("资阳牙谷数字口腔设备有限公司", f"川械注准{YEAR}2170066"),
}
USCC = {k: make_uscc(f"91512000MA62YG00{i}") for i, k in enumerate("ABCD", 1)}

# Every visible element fits the viewport (issue 14: nothing wider than the screen).
TOO_WIDE = """(vw) => { const out = [];
  for (const el of document.querySelectorAll('body, body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (el.scrollWidth > vw || r.right > vw + 0.5)
      out.push(`${el.tagName}.${el.className} ${Math.round(r.right)}/${el.scrollWidth}: ${(el.innerText || '').slice(0, 30)}`);
  } return out; }"""


@pytest.fixture(scope="module")
def art():
    path = Path(os.environ.get("YAGU_ARTIFACTS") or Path(os.environ["YAGU_DATA_DIR"]) / "browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
    with LiveServer(url) as srv:
        out = subprocess.run([sys.executable, "-m", "cli.main", "token", "create", "--role", "admin", "--label", "浏览器测试"],
                             cwd=REPO, env={**os.environ, "YAGU_DATABASE_URL": url}, capture_output=True, text=True,
                             check=True)
        srv.admin = out.stdout.strip().splitlines()[-1]
        srv.db = create_engine(url)
        yield srv
        srv.db.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


def fits(page, where: str) -> None:
    wide = page.evaluate(TOO_WIDE, page.viewport_size["width"])
    assert not wide, f"{where}: wider than the screen: {wide[:5]}"


def shows_no_internals(page, where: str) -> None:
    body = page.locator("main").inner_text()
    leaked = [w for w in LEAKS if w in body]
    assert not leaked, f"{where}: {leaked}"
    assert not any(f"{y}-{m:02d}-" in body for y in (TODAY.year - 1, TODAY.year, TODAY.year + 1) for m in range(1, 13)), \
        f"{where}: ISO date on the page"


def snap(page, art: Path, name: str) -> None:
    page.screenshot(path=str(art / f"{name}.png"), full_page=True)


def staff_login(browser, server, size=DESKTOP):
    ctx = browser.new_context(**size, accept_downloads=True)
    page = ctx.new_page()
    page.goto(server.url + "/staff")
    assert page.url.endswith("/staff/login")
    page.fill("input[name=token]", server.admin)
    page.click("#login-form button[type=submit]")
    assert page.url == server.url + "/staff"
    return ctx, page


def wait_job(page, timeout=60_000) -> str:
    """The job page follows its progress by itself (static/job.js) until the job ends."""
    assert "/staff/jobs/" in page.url
    page.wait_for_selector("#job[data-state=succeeded], #job[data-state=failed]", timeout=timeout)
    return page.locator("#job").inner_text()


def staff_pages_fit(browser, server, art, paths: list[str], tag: str) -> None:
    """The console's pages on a phone too: nothing wider than 390 px, no internals shown."""
    ctx, page = staff_login(browser, server, PHONE)
    for i, path in enumerate(paths):
        page.goto(server.url + path)
        fits(page, path)
        shows_no_internals(page, path)
        snap(page, art, f"14-console-{tag}-{i}-390")
    ctx.close()


def let_time_pass(server, sql: str, **params) -> None:
    with server.db.begin() as c:
        c.execute(text(sql), params)


def workbook(path: Path, rows: dict[str, dict], certs: dict[str, dict]) -> None:
    """Fill the downloaded import template (by its headers, as a clerk would)."""
    wb = openpyxl.load_workbook(path)

    def put(ws, row, values):
        col = {c.value: i + 1 for i, c in enumerate(ws[1])}
        for k, v in values.items():
            ws.cell(row=row, column=col[k], value=v)
    for i, (key, extra) in enumerate(rows.items()):
        name, cert = ENTERPRISES[key]
        put(wb["企业信息"], i + 2, {"统一社会信用代码": USCC[key], "企业名称": name, "纳税信用级别（A/B/M/C/D）": "A", **extra})
        put(wb["注册证"], i + 2, {"统一社会信用代码": USCC[key], "注册证编号": cert,
                                 "取得日期": (TODAY - timedelta(days=60)).isoformat(), **certs.get(key, {})})
    wb.save(path)


# --- issue 13: the whole cycle -------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_the_window_cycle_from_import_to_award_list(server, browser, art, tmp_path):
    ctx, page = staff_login(browser, server)
    cookie = next(c for c in ctx.cookies() if c["name"] == "yagu_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # A window accepting now, covering certificates of the last 150 days.
    page.fill("#new-window input[name=id]", "2026-T1")
    page.fill("#new-window input[name=label]", "测试集中申报")
    for name, d in (("opens_on", TODAY - timedelta(days=30)), ("closes_on", TODAY + timedelta(days=30)),
                    ("as_of", TODAY), ("coverage_from", TODAY - timedelta(days=150)),
                    ("coverage_to", TODAY - timedelta(days=1))):
        page.fill(f"#new-window input[name={name}]", d.isoformat())
    page.click("#new-window button[type=submit]")
    assert page.url.endswith("/staff/windows/2026-T1?done=created")
    assert page.locator("#window-state").inner_text() == "受理中"
    shows_no_internals(page, "new window")

    # Template download, three applicants imported through the console.
    with page.expect_download() as dl:
        page.click("#template")
    book = tmp_path / "申报.xlsx"
    dl.value.save_as(book)
    assert dl.value.suggested_filename == "申报导入模板.xlsx"
    yes = {"注册地在资阳高新区（是/否）": "是", "被列入严重失信主体名单（是/否）": "否"}
    workbook(book, {"A": {"注册地在资阳高新区（是/否）": "是"},             # 失信名单 unknown
                    "B": yes,
                    "C": {"被列入严重失信主体名单（是/否）": "否"}},        # 注册地 unknown
             {"A": {"来源（自主研发/引进）": "自主研发"}, "B": {},         # B: 来源 unknown
              "C": {"来源（自主研发/引进）": "引进"}})
    bad = tmp_path / "有错误.xlsx"
    bad.write_bytes(book.read_bytes())
    wb = openpyxl.load_workbook(bad)
    wb["注册证"]["F3"] = "2026年13月1日"
    wb.save(bad)
    page.set_input_files("#import-file", str(bad))
    page.click("#import-submit")
    report = wait_job(page)                         # the row report, as the CLI prints it; nothing imported
    assert "有 1 处问题，未导入任何数据" in report, report
    assert "工作表“注册证”第3行，列“取得日期”" in page.locator("#job-problems").inner_text()
    assert page.locator("#job-state").inner_text() == "未导入（文件有问题）"       # not 已完成
    snap(page, art, "13-00-import-rejected")
    page.goto(server.url + "/staff/windows/2026-T1")
    pick = page.locator(".file-pick:has(#import-file)")       # in Chinese whatever the browser's language
    assert pick.inner_text().split() == ["选择文件", "未选择文件"], pick.inner_text()
    page.set_input_files("#import-file", str(book))
    assert book.name in pick.locator(".file-name").inner_text()
    page.click("#import-submit")
    report = wait_job(page)
    assert "导入申报 6 行、3 家企业：新受理 3" in report, report
    snap(page, art, "13-01-import-report")
    with page.expect_download() as dl:
        page.click("a:has-text('查询码.csv')")
    codes = {r[1]: (r[2], r[3]) for r in csv.reader(io.StringIO(Path(dl.value.path()).read_text("utf-8-sig")))
             if len(r) == 4 and r[0] != "统一社会信用代码"}
    assert set(codes) == {ENTERPRISES[k][0] for k in "ABC"}

    # Registry import (免申即享): D did not apply but is known and eligible.
    registry = tmp_path / "名录.xlsx"
    with page.expect_download() as dl:
        page.goto(server.url + "/staff")
        page.click("#registry >> text=下载导入模板")
    dl.value.save_as(registry)
    workbook(registry, {"D": yes}, {"D": {"来源（自主研发/引进）": "自主研发"}})
    page.set_input_files("#registry-file", str(registry))
    page.click("#registry-submit")
    assert "导入企业名录 2 行、1 家企业" in wait_job(page)

    # Judge: a background job whose page shows its progress and follows it to the end.
    page.goto(server.url + "/staff/windows/2026-T1")
    page.click("#evaluate")
    assert page.locator("h1").inner_text() == "批量判定"
    # read at one instant in the page: the job may finish, and the page follow it, in between
    state, progress = page.evaluate("() => [document.querySelector('#job').dataset.state, "
                                    "document.querySelectorAll('#job-progress').length]")
    if state in ("queued", "running"):
        assert progress == 1           # then followed to the end by itself
    report = wait_job(page)
    assert "已判定 4 家企业（其中申报 3 份，另有 1 家未申报的已知企业" in report and "已完成" in report, report
    page.goto(server.url + "/staff/windows/2026-T1")
    assert page.locator("#grant-counts").inner_text() == "需补充信息 3 项"     # the registry's D is no applicant
    page.click("#issue-notices")                    # a confirmation first: how many, until when
    confirm = page.locator("#one-time-preview").inner_text()
    assert "向 3 份申报发出一次性告知书" in confirm and "补正期限" in confirm, confirm
    snap(page, art, "13-01b-one-time-confirm")
    page.click("#confirm-one-time")
    assert page.locator("#done").inner_text().startswith("已发出 3 份一次性告知书")
    snap(page, art, "13-02-window-after-notices")
    fits(page, "window page")
    page.reload()                                   # a refresh does not issue them again
    assert page.locator("#done").count() == 1 and "待补正 3" in page.locator("#window-facts").inner_text()

    page.click("#applications-link")
    page.select_option("#filters select[name=pending]", "yes")
    page.click("#filters button")
    assert page.locator("#applications tbody tr").count() == 3
    snap(page, art, "13-03-applications")
    fits(page, "application list")
    first = codes[ENTERPRISES["A"][0]][0]
    staff_pages_fit(browser, server, art, ["/staff", "/staff/windows/2026-T1", "/staff/windows/2026-T1/applications",
                                           f"/staff/applications/{first}", "/staff/tokens"], "open")

    # B, on a phone: access code in a form (never in a URL), supplies its 来源 and a file.
    phone = browser.new_context(**PHONE)
    ent = phone.new_page()
    seen = []
    ent.on("request", lambda r: seen.append(r.url))
    app_b, code_b = codes[ENTERPRISES["B"][0]]
    ent.goto(server.url + "/application")
    ent.fill("input[name=application_id]", app_b.lower())
    ent.fill("input[name=access_code]", code_b)
    ent.click("#login-form button[type=submit]")
    assert ent.url == server.url + "/application/view"
    assert not any(code_b in u for u in seen)
    assert ent.locator("#app-state").inner_text() == "待补正"
    correction = ent.locator("#correction")
    assert f"注册证 {ENTERPRISES['B'][1]}的来源" in correction.inner_text()
    snap(ent, art, "13-04-enterprise-correction-390")
    fits(ent, "enterprise page")
    shows_no_internals(ent, "enterprise page")
    refused = []
    phone.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    ent.click("#notices >> text=查看 >> nth=0")        # in the same tab: a phone has no tab bar to go back by
    ent.wait_for_load_state()
    assert "一次性告知书" in ent.locator("body").inner_text()
    # its own style applies (the page's CSP allows the notice's one inline style sheet)
    assert ent.evaluate("getComputedStyle(document.body).maxWidth") != "none" and not refused, refused
    bar = ent.locator("nav.notice-bar")             # the way back and to the PDF, never printed
    assert bar.is_visible() and "下载 PDF" in bar.inner_text()
    snap(ent, art, "13-04b-one-time-notice-390")
    fits(ent, "one-time notice on a phone")
    ent.emulate_media(media="print")
    assert not bar.is_visible()
    ent.emulate_media(media="screen")
    bar.locator("text=返回我的申报").click()
    assert ent.url == server.url + "/application/view"
    proof = tmp_path / "申报承诺书.pdf"
    proof.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    correction.locator("input[type=file]").last.set_input_files(str(proof))
    ent.click("#submit-correction")         # the certificate's origin left out: named, with what to do
    assert f"注册证 {ENTERPRISES['B'][1]}的来源：尚未填写" in ent.locator("#correction-errors").inner_text()
    assert ent.locator("#left-out-hint").count() == 1
    # the file chosen is kept for the next try: said at it, not chosen again
    assert "不必重新选择" in ent.locator("#files-kept").inner_text()
    assert "已收到“申报承诺书.pdf”" in ent.locator("#correction .held").first.inner_text()
    snap(ent, art, "13-04c-enterprise-correction-left-out-390")
    fits(ent, "enterprise page, a 补正 leaving a file out")
    correction = ent.locator("#correction")
    correction.locator("select").select_option(label="自主研发")
    ent.click("#submit-correction")         # the origin stated, without the certificate's copy
    assert "填写的情况须有证明材料：请上传“医疗器械注册证及其附件复印件”" in ent.locator("#correction-errors").inner_text()
    correction = ent.locator("#correction")
    assert correction.locator("select").first.input_value() == "self_developed"      # kept
    copy = tmp_path / "注册证.pdf"
    copy.write_bytes(proof.read_bytes())
    for box in correction.locator("input[type=file]").all():   # the proofs; a self-developed product has no
        name = box.get_attribute("name")                       # change document; the letter is held still
        if "registrant_change_document" not in name and not name.endswith("commitment_letter"):
            box.set_input_files(str(copy))
    ent.click("#submit-correction")
    assert ent.url.endswith("/application/view?done=corrected")
    assert ent.locator("#app-state").inner_text() == "已补正"
    assert ent.locator(f"article[data-subject='{ENTERPRISES['B'][1]}']").get_attribute("data-status") == "eligible"
    assert "申报承诺书.pdf" in ent.locator(".files").inner_text()
    snap(ent, art, "13-05-enterprise-corrected-390")
    ent.reload()                                    # the 补正 is not submitted twice
    assert ent.locator("#correction").count() == 0 and ent.locator("#app-state").inner_text() == "已补正"

    # Staff: the list filters, then 复核 — B confirmed, A overridden with a reason.
    page.goto(server.url + "/staff/windows/2026-T1/applications?status=eligible")
    assert page.locator("#applications tbody tr").count() == 1
    page.goto(server.url + "/staff/windows/2026-T1/applications?device_class=III")
    assert ENTERPRISES["B"][0] in page.locator("#applications").inner_text()
    page.fill("#filters input[name=q]", "义齿")
    page.click("#filters button")
    page.click(f"text={ENTERPRISES['B'][0]}")
    for part in ("#summary", "#notices", "#history", "#profile"):
        assert page.locator(part).count() == 1
    block = page.locator(".review-block")
    letter = block.locator(".material[data-material=commitment_letter]")
    assert "申报承诺书.pdf" in letter.inner_text() and block.locator(".material").count() == 2
    for kind in ("commitment_letter", "registration_certificate"):
        page.locator(f".review-block .material[data-material={kind}] .material-form button[value=yes]").click()
        assert page.url.endswith("?done=material")
        assert "已通过" in page.locator(f".material[data-material={kind}]").inner_text()
    page.locator(".review-form select[name=decision]").select_option("confirm")
    page.locator(".review-form button").click()
    assert page.url.endswith("?done=reviewed")
    events = page.locator("#history li").count()
    page.reload()                                   # redirect after POST: a refresh repeats nothing
    assert page.locator("#history li").count() == events
    assert "复核：维持判定" in page.locator("#history").inner_text()
    snap(page, art, "13-06-staff-application-B")
    fits(page, "staff application page")
    shows_no_internals(page, "staff application page")

    app_a = codes[ENTERPRISES["A"][0]][0]
    page.goto(f"{server.url}/staff/applications/{app_a}")
    page.locator(".review-form select[name=decision]").select_option("eligible")
    page.locator(".review-form button").click()
    # refused on the same page, at that decision's form, with the verdict chosen kept
    assert "写明理由" in page.locator("#review-errors").inner_text()
    assert page.locator(".review-form select[name=decision]").input_value() == "eligible"
    page.fill(".review-form input[name=reason]", "经查询“信用中国”，该企业未被列入严重失信主体名单")
    page.locator(".review-form button").click()
    verdicts = page.locator(".review .verdicts").inner_text()
    assert "规则判定 需补充信息" in verdicts and "复核结论 符合条件" in verdicts, verdicts
    assert "信用中国" in page.locator(".review").inner_text()
    snap(page, art, "13-07-staff-override-A")
    page.goto(server.url + "/staff/windows/2026-T1/applications?reviewed=yes")
    assert page.locator("#applications tbody tr").count() == 2

    # Days pass: the acceptance period ends and C's 补正 deadline goes by.
    app_c, code_c = codes[ENTERPRISES["C"][0]]
    let_time_pass(server, "UPDATE windows SET opens_on = :o, closes_on = :c WHERE id = '2026-T1'",
                  o=TODAY - timedelta(days=40), c=TODAY - timedelta(days=1))
    let_time_pass(server, "UPDATE applications SET correction_due = :d WHERE window_id = '2026-T1' "
                          "AND correction_due IS NOT NULL", d=TODAY - timedelta(days=1))
    late = browser.new_context(**PHONE).new_page()
    late.goto(server.url + "/application")
    late.fill("input[name=application_id]", app_c)
    late.fill("input[name=access_code]", code_c)
    late.click("#login-form button[type=submit]")
    assert "补正期限已于" in late.locator("#correction-closed").inner_text() and late.locator("#correction").count() == 0
    # nothing left to supply for the grant: its card no longer suggests supplying anything
    grant = late.locator("article.result[data-benefit=device-registration-grant]")
    assert grant.count() >= 1
    assert grant.locator(".suggestions").count() == 0 and grant.locator("p.missing").count() == 0
    late.context.close()

    # 公示, then close: the confirmation names what will happen and how many.
    page.goto(server.url + "/staff/windows/2026-T1")
    page.click("#publish")                          # a confirmation first: what goes on the list, until when
    assert "2 项资金支持，合计 800,000元" in page.locator("#publish-awards").inner_text()
    assert "个工作日" in page.locator("#publish-period").inner_text()
    snap(page, art, "13-07-publish-confirmation")
    page.click("#confirm-publish")
    assert page.locator("#done").inner_text() == "拟支持名单已公示。"
    assert "公示中" in page.locator("#window-state").inner_text()
    page.goto(f"{server.url}/staff/applications/{app_a}")            # an objection during 公示
    page.fill("#objections textarea[name=text]", "有企业反映该注册证产品并非本企业自主研发")
    page.click("#objections button:has-text('登记异议')")
    assert page.url.endswith("?done=objection")
    page.fill("#objections input[name=resolution]", "经核查注册人为本企业，异议不成立")
    page.click("#objections button:has-text('记录处理')")
    assert "异议不成立" in page.locator("#objections").inner_text()
    assert "公示期异议" in page.locator("#history").inner_text()
    page.goto(server.url + "/staff/windows/2026-T1")
    page.click("#close")
    preview = page.locator("#close-preview").inner_text()
    assert "把 2 项资金支持写入兑现台账，合计 800,000元" in preview, preview
    assert "向 1 份申报出具不予支持告知书" in preview, preview
    snap(page, art, "13-08-close-confirmation")
    page.fill("#close-form textarea[name=reason]", "年度资金拨付时限要求，经管委会同意提前关闭")
    page.click("#confirm-close")
    assert page.locator("#done").inner_text() == "批次已关闭，兑现名单已写入兑现台账。"
    assert "2 项，800,000元" in page.locator("#window-facts").inner_text()
    assert page.locator("#evaluate").count() == 0                  # nothing left to do on a closed window
    page.click("#awards-link")
    awards = page.locator("#awards tbody").inner_text()
    assert ENTERPRISES["A"][0] in awards and ENTERPRISES["B"][0] in awards and ENTERPRISES["C"][0] not in awards
    assert "300,000元" in awards and "500,000元" in awards
    assert "合计 2 项" in page.locator("#awards tfoot").inner_text() and USCC["A"] in awards   # as printed
    assert ENTERPRISES["D"][0] in page.locator("#proactive").inner_text()        # 免申即享
    snap(page, art, "13-09-award-list")
    fits(page, "award list")

    # Every notice of the window, in the background, named by enterprise and kind.
    page.goto(server.url + "/staff/windows/2026-T1")
    page.click("#bundle")
    assert "已完成" in wait_job(page, 120_000)
    with page.expect_download() as dl:
        page.click("a:has-text('.zip')")
    names = zipfile.ZipFile(dl.value.path()).namelist()
    assert sum(n.endswith(f"{ENTERPRISES['C'][0]}-不予支持告知书.pdf") for n in names) == 1, names
    assert not [n for n in names if "不予支持" in n and ENTERPRISES["C"][0] not in n], names

    # Exactly one 不予支持告知书, C's, for its grant only.
    for key in "AB":
        page.goto(f"{server.url}/staff/applications/{codes[ENTERPRISES[key][0]][0]}")
        assert "不予支持告知书" not in page.locator("#notices").inner_text()
    page.goto(f"{server.url}/staff/applications/{app_c}")
    assert page.locator("#app-state").inner_text() == "不予支持"
    refusal = page.locator("#notices li", has_text="不予支持告知书")
    assert refusal.count() == 1
    with ctx.expect_page() as notice:
        refusal.locator("text=查看").click()
    body = notice.value.locator("body").inner_text()
    assert GRANT in body and ENTERPRISES["C"][1] in body
    assert not [t for t in TAX_TITLES if t in body]
    snap(notice.value, art, "13-10-non-support-notice")
    staff_pages_fit(browser, server, art, ["/staff/windows/2026-T1", "/staff/windows/2026-T1/awards",
                                           f"/staff/applications/{app_c}"], "closed")
    phone.close()
    ctx.close()


@pytest.mark.timeout(120)
def test_an_enterprise_applies_on_its_phone_and_sees_its_application(server, browser, art):
    r = httpx.post(server.url + "/v1/windows", headers={"Authorization": f"Bearer {server.admin}"}, timeout=30, json={
        "id": "2026-T2", "label": "网上申报测试批次", "opens_on": (TODAY - timedelta(days=5)).isoformat(),
        "closes_on": (TODAY + timedelta(days=5)).isoformat(), "coverage_from": (TODAY - timedelta(days=90)).isoformat(),
        "coverage_to": TODAY.isoformat()})
    assert r.status_code == 201, r.text
    page = browser.new_context(**PHONE).new_page()
    seen = []
    page.on("request", lambda req: seen.append(req.url))
    page.goto(server.url + "/apply")
    card = page.locator(".card", has_text="网上申报测试批次")
    card.locator("text=填写申报").click()
    assert page.locator("h1").inner_text() == "在线申报：网上申报测试批次"
    page.fill("#f-uscc", USCC["D"][:-1] + ("0" if USCC["D"][-1] != "0" else "1"))     # a wrong check character
    page.fill("#f-name", ENTERPRISES["D"][0])
    page.fill("#f-device_registrations-0-certificate_no", f"川械注准{YEAR}2170088")
    page.fill("#f-device_registrations-0-obtained_on", (TODAY - timedelta(days=10)).isoformat())
    page.press("#f-name", "Enter")          # the phone keyboard's 前往: nothing sent, nothing lost
    assert page.url.startswith(server.url + "/apply/2026-T2")
    assert page.locator("#form-errors").count() == 0
    assert page.input_value("#f-device_registrations-0-certificate_no") == f"川械注准{YEAR}2170088"
    page.click("#submit")
    assert "统一社会信用代码" in page.locator("#form-errors").inner_text()
    assert page.input_value("#f-device_registrations-0-certificate_no") == f"川械注准{YEAR}2170088"   # nothing lost
    page.fill("#f-uscc", USCC["D"])
    page.click("#submit")
    assert page.url == server.url + "/apply/done"
    app_id, code = page.locator("#application-id").inner_text(), page.locator("#access-code").inner_text()
    assert app_id.startswith("A") and len(code) >= 8
    assert page.locator("#replaced").count() == 0
    receipt = page.locator(".receipt").inner_text()              # what a printed receipt must say
    assert USCC["D"] in receipt and "提交时间" in receipt and "/application" in page.locator("main").inner_text()
    page.evaluate("window.print = () => { window.printed = true; }")    # the dialog would block
    page.click("#print-receipt")
    assert page.evaluate("window.printed === true")
    snap(page, art, "13-apply-done-390")
    fits(page, "applied")
    page.reload()                                   # shown once; a refresh submits nothing again
    assert page.locator("#access-code").count() == 0 and "只显示一次" in page.locator("main").inner_text()
    page.goto(server.url + "/application")
    page.fill("input[name=application_id]", app_id)
    page.fill("input[name=access_code]", code)
    page.click("#login-form button[type=submit]")
    assert page.locator("#app-state").inner_text() == "已受理"
    assert "尚未判定" in page.locator("main").inner_text()
    assert not any(code in u for u in seen)
    # submitted again: only with the code of the first (anyone can type a credit code), and the
    # receipt then says the first code is void
    page.goto(server.url + "/apply/2026-T2")
    page.fill("#f-uscc", USCC["D"])
    page.fill("#f-name", ENTERPRISES["D"][0])
    page.click("#submit")
    assert "请填写上次取得的查询码" in page.locator("#form-errors").inner_text()
    assert "请填写上次取得的查询码" in page.locator(".prior-code").inner_text()   # at the field, first on the form
    assert page.input_value("#f-name") == ENTERPRISES["D"][0]               # nothing lost
    page.fill("#f-prior_code", code)
    page.click("#submit")
    assert page.locator("#application-id").inner_text() == app_id
    assert "此前的查询码已作废" in page.locator("#replaced").inner_text()
    assert page.locator("#access-code").inner_text() != code
    page.context.close()


# --- issue 14: pages on any screen ---------------------------------------------------------------
def _fill_profile(page, cert_obtained: date | None = None) -> None:
    page.fill("#f-uscc", USCC["A"])
    page.fill("#f-name", ENTERPRISES["A"][0])
    page.select_option("#f-in_park", "yes")
    page.select_option("#f-tax_collection", "audit")
    page.fill("#f-employees_avg", "120")
    page.fill("#f-total_assets_avg_cny", "4,200万")
    page.fill("#f-taxable_income_cny", "240万元")
    page.fill("#f-western_encouraged_share", "92%")
    page.select_option("#f-restricted_industry", "no")
    page.select_option("#f-on_serious_dishonest_list", "no")
    page.select_option("#f-hnte_certificate\\.state", "held")
    page.fill("#f-hnte_certificate\\.number", "GR202451000123")
    page.fill("#f-hnte_certificate\\.issued_on", f"{TODAY.year - 1}-12-01")
    page.select_option("#f-hnte_year_conditions_met", "yes")
    page.fill("#f-device_registrations-0-certificate_no", f"国械注准{YEAR}3170099")   # not in the ledger
    page.select_option("#f-device_registrations-0-origin", "self_developed")
    page.select_option("#f-device_registrations-0-innovative", "yes")
    page.fill("#f-device_registrations-0-obtained_on", (cert_obtained or TODAY - timedelta(days=30)).isoformat())


def _past_window():
    """The default calendar's latest window whose acceptance period is over, and a date in its
    coverage (before the next window's coverage)."""
    cal = load_rulebook().calendar
    nxt = cal.next_window(TODAY)
    past = max((w for y in (TODAY.year - 1, TODAY.year) for w in cal.windows_of_year(y)
                if w.closes_on < TODAY and w.coverage_to < nxt.coverage_from), key=lambda w: w.closes_on)
    return past, past.coverage_from + timedelta(days=20)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_self_check_form_and_results_on_a_phone_and_a_desktop(server, browser, art, size):
    width = size["viewport"]["width"]
    ctx = browser.new_context(**size)
    page = ctx.new_page()
    page.goto(server.url + "/")
    fits(page, "form")
    # The certificate rows: a card with its inputs stacked on a phone, one line on a desktop.
    tops = page.locator("#rows-device_registrations fieldset input, #rows-device_registrations fieldset select")
    ys = sorted(tops.nth(i).bounding_box()["y"] for i in range(tops.count()))
    if width == 390:
        assert all(b - a > 30 for a, b in zip(ys, ys[1:])), ys
    else:
        assert ys[-1] - ys[0] < 4, ys
    with page.expect_navigation():
        page.click("#add-device_registrations")
    assert page.locator("#rows-device_registrations fieldset").count() == 2
    assert page.url.endswith("#row-device_registrations-1")          # back at the new row, not the top
    if width == 390:
        assert page.evaluate("window.scrollY") > 0
    snap(page, art, f"14-form-{width}")
    with page.expect_navigation():
        page.click("#remove-device_registrations-1")    # and taken out again
    assert page.locator("#rows-device_registrations fieldset").count() == 1
    fits(page, "form")

    # A date typed in part reaches the server as nothing: stopped here, the box named.
    when = page.locator("#rows-device_registrations input[type=date]").first
    when.click()
    page.keyboard.type("0315")            # two of its three parts
    page.press("#f-name", "Enter")
    warning = page.locator(".partial-dates")
    warning.wait_for()
    assert "没有填完整" in warning.inner_text() and "取得日期" in warning.inner_text(), warning.inner_text()
    assert page.locator("#summary").count() == 0 and when.get_attribute("aria-invalid") == "true"
    when.fill("")

    past, obtained = _past_window()
    _fill_profile(page, obtained)
    page.press("#f-name", "Enter")        # Enter runs the check; it never presses a row's 删除
    page.wait_for_selector("#summary")
    assert page.locator(f"article[data-benefit=device-registration-grant]").count() == 1
    fits(page, "results")
    shows_no_internals(page, "results")
    snap(page, art, f"14-results-{width}")
    # No date given: the certificate is shown in its own (closed) window, not failed against the next.
    grant = page.locator(f"article[data-benefit=device-registration-grant]")
    assert grant.count() == 1
    line = grant.locator(".window-line").inner_text()
    assert past.label in line and "已截止" in line, line
    assert grant.get_attribute("data-status") == "eligible"
    # Amounts carry 元, an innovative device's amount says what it was read by.
    assert grant.locator(".amount").inner_text().startswith("2,000,000元")
    assert "经创新医疗器械特别审查程序 是" in grant.locator(".amount-basis").inner_text()
    for a in page.locator(".amount").all_inner_texts():
        assert "元" in a
    # Criteria collapse; results are cards within the screen.
    assert page.locator("details.criteria[open]").count() == 0
    for box in (c.bounding_box() for c in page.locator("article.result").all()):
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    if width == 390:
        assert page.evaluate("document.body.scrollHeight") < 9000
    # Tax: what to keep and until when, the 15% conflict where the results are.
    hnte = page.locator(".claim[data-benefit=hnte-reduced-rate]")
    assert "高新技术企业资格证书" in hnte.locator(".records").inner_text()
    assert "保存至" in hnte.locator(".keep-until").inner_text()
    assert "西部大开发" in hnte.locator(".conflict-note").inner_text()
    assert "选择其一" in page.locator(".conflicts").inner_text()
    # The ruleset version is a short reference in a side line, not the headline nor the engine's internals.
    assert "规则版本" not in page.locator("h1").inner_text()
    version = page.locator("p.version").inner_text()
    assert re.fullmatch(r"规则版本 [0-9a-f]{8}（向工作人员查询或提出异议时，可提供此编号）", version), version

    # The printable page is a 自测结果, not a decision.
    with ctx.expect_page() as printed:
        page.click("#print")
    doc = printed.value
    doc.wait_for_load_state()
    body = doc.locator("body").inner_text()
    assert "自测结果" in body and "仅供参考" in body and past.label in body
    assert "管委会（盖章）" not in body and "期限" not in body and "（印章）" not in body
    snap(doc, art, f"14-print-{width}")
    if width == 390:
        fits(doc, "printable self-check")
    ctx.close()


@pytest.mark.timeout(120)
def test_form_reads_numbers_as_written_and_says_what_is_wrong_in_plain_chinese(server, browser, art):
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.goto(server.url + "/")
    page.fill("#f-uscc", USCC["A"])
    page.fill("#f-name", ENTERPRISES["A"][0])
    page.fill("#f-total_assets_avg_cny", "4200万元")
    page.fill("#f-rd_expense_cny", "92%")
    page.fill("#f-employees_avg", "很多")
    page.fill("#f-four_industries_sales_share", "92")
    page.fill("#f-vat_credit_positive_months", "3.5")
    page.click("#submit")
    errors = page.locator("#form-errors")
    text_ = errors.inner_text()
    snap(page, art, "14-form-errors-390")
    fits(page, "form errors")
    assert text_.startswith("有 4 处需要修改"), text_
    for label in ("当年研发费用", "全年季度平均从业人数", "近12个月制造业等4个行业增值税销售额占比", "连续期末留抵税额大于零的月数"):
        assert label in text_
    assert "全年季度平均资产总额" not in text_                  # "4200万元" was read
    assert "不能大于 1（即 100%）" in text_
    # a count gets the phone's number pad; an amount (4200万) and a share (92%) a pad with more keys
    assert page.get_attribute("#f-vat_credit_positive_months", "inputmode") == "numeric"
    assert page.get_attribute("#f-rd_expense_cny", "inputmode") == "decimal"
    assert not [w for w in ("字符串", "必须是", "string", "int", "profile.") if w in text_]
    assert page.input_value("#f-employees_avg") == "很多"      # what was typed stays, marked
    assert page.get_attribute("#f-employees_avg", "aria-invalid") == "true"
    assert page.input_value("#f-total_assets_avg_cny") == "4200万元"    # as typed, not as read
    assert page.input_value("#f-four_industries_sales_share") == "92" and "占比请写成 92% 或 0.92" in text_
    page.fill("#f-rd_expense_cny", "180万")
    page.fill("#f-employees_avg", "86")
    page.fill("#f-four_industries_sales_share", "92%")
    page.fill("#f-vat_credit_positive_months", "3")
    page.click("#submit")
    page.wait_for_selector("#summary")
    ctx.close()


@pytest.mark.timeout(120)
def test_tokens_are_listed_and_revoked_in_the_console(server, browser, art):
    ctx, page = staff_login(browser, server)
    page.goto(server.url + "/staff/tokens")
    page.select_option("#new-token select[name=role]", "staff")
    page.fill("#new-token input[name=label]", "窗口经办人")
    page.select_option("#new-token select[name=days]", "90")
    page.click("#new-token button[type=submit]")
    value = page.locator("#token-value").inner_text().strip()
    assert value.startswith("yagu_") and page.url.endswith("/staff/tokens/created")
    page.reload()                                   # shown once; a refresh creates no second token
    assert page.url.endswith("/staff/tokens") and page.locator("#tokens tr", has_text="窗口经办人").count() == 1
    from engine.vocabulary import BEIJING

    expires = (datetime.now(BEIJING) + timedelta(days=90)).date()
    assert f"{expires.year}年{expires.month}月{expires.day}日" in page.locator("#tokens tr", has_text="窗口经办人").inner_text()
    row = page.locator("#tokens tr", has_text="窗口经办人")
    assert "经办人员" in row.inner_text() and "有效" in row.inner_text()
    assert "yagu_" not in page.locator("#tokens").inner_text()        # listed, never shown again
    row.locator("button", has_text="吊销").click()
    assert page.url.endswith("/staff/tokens?done=token")
    assert "已吊销" in page.locator("#tokens tr", has_text="窗口经办人").inner_text()
    snap(page, art, "13-tokens")
    other = browser.new_context(**DESKTOP).new_page()
    other.goto(server.url + "/staff/login")
    other.fill("input[name=token]", value)
    other.click("#login-form button[type=submit]")
    assert "令牌无效" in other.locator(".alert").inner_text()
    other.context.close()
    ctx.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_with_the_network_blocked(server, browser, art, path):
    ctx = browser.new_context(**DESKTOP)
    outside = []

    def only_this_server(route):
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()
    ctx.route("**/*", only_this_server)
    page = ctx.new_page()
    refused = []        # what the CSP stopped: a request attempted outside, never seen by the route
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server.url + path)
    page.get_by_text("/v1/eligibility").first.wait_for(timeout=30_000)
    body = page.locator("body").inner_text()
    assert "惠企政策资格自测" in body
    assert "Redocly" not in body and "Download" not in body
    page.wait_for_timeout(500)
    snap(page, art, f"14-docs{path.replace('/', '-')}")
    assert not outside, outside
    assert not refused, refused
    ctx.close()


def test_console_forms_refuse_a_missing_csrf_token(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/staff/login")
        c.post("/staff/login", data={"token": server.admin, "csrf": r.cookies.get("yagu_login_csrf", "")})
        r = c.post("/staff/windows", data={"id": "2030-H1"})
        assert r.status_code == 409 and "表单已失效" in r.text
        assert "2030-H1" not in c.get("/staff").text


def test_a_notices_tables_read_as_blocks_on_a_phone_and_as_tables_on_a_desktop(browser, art):
    """A one-time notice with failed criteria, opened in a browser: on a phone each row of its
    tables is one block with every cell under its column's name (four columns of a few
    characters each were unreadable); on a desktop it stays the table the PDF prints."""
    import importlib.util

    from notices.render import NoticeRenderer

    spec = importlib.util.spec_from_file_location("bench_notices", Path(__file__).parent.parent / "bench" / "notices.py")
    nb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nb)
    html = NoticeRenderer().render_html(nb.inputs(3, ["one_time"])["one_time"][0])
    for size, shown in ((PHONE, "block"), (DESKTOP, "table-cell")):
        ctx = browser.new_context(**size)
        page = ctx.new_page()
        page.set_content(html)
        cell = page.locator("td[data-label='贵单位情况']").first
        assert cell.evaluate("e => getComputedStyle(e).display") == shown
        if size is PHONE:
            assert cell.bounding_box()["width"] > 300
            assert "贵单位情况：" in cell.evaluate("e => getComputedStyle(e, '::before').content.replace(/\"/g, '')")
            fits(page, "one-time notice on a phone")
            snap(page, art, "14-notice-table-390")
        ctx.close()
