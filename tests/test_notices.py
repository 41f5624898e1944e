"""Notices as the enterprise reads them: the HTML and the PDF's extracted text of every kind,
for profiles generated from the field registry and for stored applications."""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import textwrap
import zipfile
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from jinja2.exceptions import SecurityError
from pypdf import PdfReader
from sqlalchemy import func, select

from engine import Evaluator, load_rulebook
from engine.loader import rules_dir
from engine.uscc import make_uscc
from engine.vocabulary import BEIJING, PROVISIONAL_CRITERION, cn_date
import notices.pdf
from notices.pdf import typst_to_pdf
from notices.render import NoticeRenderer
from notices.service import NoticeService
from notices.settings import SettingsError, load_settings, settings_path
from notices.view import NoticeNotApplicable, build, from_response
from store import cases, jobs, rulesets
from store import windows as W
from store.applications import submit_application
from store.errors import Conflict
from store.evaluation import evaluate_window
from store.models import Notice
from store.notices import KINDS
from leaks import covering_profiles, html_text, leaks, pdf_pages, pdf_text
from store_fixtures import db, make_store_url, proofs, store_url  # noqa: F401  (fixtures)

AS_OF = date(2026, 3, 31)                   # the 2026 H1 window's judging day
TODAY = date(2026, 3, 20)                   # a day inside that window
ISSUED = date(2026, 4, 1)
WINDOW = {"id": "2026-H1", "label": "2026年上半年集中申报"}
HOSTILE = '<script>alert(1)</script> #set text(red) *粗体* $x$ "引号" \\u{41} // 资阳&牙谷有限公司'
RENDERER = NoticeRenderer()
SETTINGS = load_settings()                  # tests/fixtures/notice-settings.yaml: every value set


def notice_input(kind: str, ev: Evaluator, profile: dict, resp, settings=SETTINGS, **extra):
    k = KINDS[kind]
    fields = {"issued_on": ISSUED, "window": WINDOW, "application_id": "A0000001", **extra}
    if k.char:
        fields.setdefault("number", f"资高新惠{k.char}〔2026〕第0001号")
    if kind == "one_time":
        fields.setdefault("correction_due", date(2026, 4, 9))
    return from_response(k, ev, profile, resp, settings, **fields)


def pdf_of(n) -> bytes:
    return typst_to_pdf(RENDERER.render_typst(n))


class Sections(HTMLParser):
    """Per <section> of the HTML, in order: the texts of elements carrying each class."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[dict[str, list[str]]] = []
        self.stack: list[tuple[str, list[str], list[str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append({})
        if tag != "br":
            self.stack.append((tag, (dict(attrs).get("class") or "").split(), []))

    def handle_endtag(self, tag):
        while self.stack:
            t, classes, buf = self.stack.pop()
            text = "".join(buf)
            for c in classes:
                if self.sections:
                    self.sections[-1].setdefault(c, []).append(text.strip())
            if self.stack:
                self.stack[-1][2].append(text)
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


def sections(html: str) -> list[dict[str, list[str]]]:
    p = Sections()
    p.feed(html)
    return p.sections


# ------------------------------------------------------------------ generated profiles, every kind

@pytest.fixture(scope="module")
def covering(interp_eval, registry):
    """(profile, results) of the registry's covering profiles, every other one judged without
    the award ledger (its criterion unknown too)."""
    return [(p, interp_eval.evaluate(p, AS_OF, awarded=set() if i % 2 == 0 else None))
            for i, p in enumerate(covering_profiles(registry))]


def test_the_scanner_sees_each_kind_of_leak(registry, book):
    text = ("类型：registration，来源 self_developed（device_registrations[0].origin）；in_park；certificate.origin；"
            "状态 needs_info；eligible；（联系电话待设置）；None；null；&lt;b&gt;；\\#；device-registration-grant")
    found = " ".join(leaks(text, registry, book))
    for leak in ("registration", "self_developed", "device_registrations[0]", "in_park", "certificate.origin",
                 "needs_info", "eligible", "待设置", "None", "null", "&lt;", "\\#", "device-registration-grant"):
        assert repr(leak) in found, leak
    assert leaks("注册证类型：注册证，来源：自主研发；纳税信用级别：A级；川械注准20252170031", registry, book) == []


def test_every_kind_for_generated_profiles_shows_no_raw_value_path_or_placeholder(covering, interp_eval, book):
    reg = interp_eval.registry
    rendered: dict[str, int] = {k: 0 for k in KINDS}
    problems = []
    for p, resp in covering:
        for kind in KINDS:
            n = notice_input(kind, interp_eval, p, resp)
            try:
                html = RENDERER.render_html(n)
            except NoticeNotApplicable:
                continue
            rendered[kind] += 1
            if "/*" in html or "<!--" in html:       # the source's comments stay in the source
                problems.append(f"{kind} HTML {p['name']}: 含源码注释")
            for where, text in (("HTML", html_text(html)), ("PDF", pdf_text(pdf_of(n)))):
                problems += [f"{kind} {where} {p['name']}: {leak}" for leak in leaks(text, reg, book)]
    assert not problems, "\n".join(problems[:40])
    assert all(rendered.values()), rendered          # every kind was rendered for some profile


def test_covering_profiles_reach_every_value_and_every_unknown(covering, registry):
    profiles = [p for p, _ in covering]
    items = {name: [i for p in profiles for i in p.get(name) or []] for name in registry.lists}
    for f in registry.entered_fields():
        if f.values:
            assert {p.get(f.id) for p in profiles} >= set(f.values), f.id
        if not f.required:
            assert any(p.get(f.id) is None for p in profiles), f.id
        for sub in f.fields if f.type == "list" else []:
            if sub.values:
                assert {i.get(sub.id) for i in items[f.id]} >= set(sub.values), sub.id
            if not sub.required:
                assert any(i.get(sub.id) is None for i in items[f.id]), sub.id
    for fact in ("certificate.registration_type", "certificate.approval"):     # derived from the number
        seen = {c.observed[fact] for _, resp in covering for r in resp.results for c in r.criteria
                if fact in c.observed}
        assert seen >= set(registry.field_at(fact).values) | {None}, fact
    assert {p["industry_code"][0] for p in profiles if p.get("industry_code")} >= set(
        registry.field_at("industry_section").values)


class _Chunks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("style", "title")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("style", "title")

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.chunks.append("".join(data.split()))


def test_the_pdf_says_what_the_html_says(covering, interp_eval):
    for kind in ("one_time", "selfcheck"):
        p, resp = next((p, r) for p, r in covering if any(x.status == "ineligible" for x in r.results))
        n = notice_input(kind, interp_eval, p, resp)
        chunks = _Chunks()
        chunks.feed(RENDERER.render_html(n))
        pdf = pdf_text(pdf_of(n))
        assert len(chunks.chunks) > 20
        assert [c for c in chunks.chunks if c not in pdf] == []


def test_hostile_text_prints_as_written_in_html_and_pdf(interp_eval):
    p = {"uscc": "91512000MA62XY001U", "name": HOSTILE, "in_park": False}
    n = notice_input("one_time", interp_eval, p, interp_eval.evaluate(p, AS_OF))
    n.settings = SETTINGS.model_copy(update={"submission_how": "提交方式：#emph[斜体] [链接](http://x) = 标题"})
    html = RENDERER.render_html(n)
    assert "<script>" not in html
    text = html_text(html)
    pdf = pdf_text(pdf_of(n))
    for s in (HOSTILE, "提交方式：#emph[斜体] [链接](http://x) = 标题"):
        assert s in text
        assert "".join(s.split()) in pdf


def test_pdf_fonts_are_embedded_and_the_title_is_set(covering, interp_eval):
    p, resp = covering[0]
    pdf = pdf_of(notice_input("selfcheck", interp_eval, p, resp))
    with io.BytesIO(pdf) as f:
        reader = PdfReader(f)
        assert reader.metadata.title.startswith("自测结果")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        fonts = subprocess.run(["pdffonts", f.name], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert {r[0].split("+")[1].split("-")[0] for r in rows} >= {"NotoSerifCJKsc", "NotoSansCJKsc"}
    assert rows and all(r[-5] == "yes" for r in rows), fonts           # emb


def test_missing_fonts_are_named_with_the_package_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(notices.pdf, "font_dirs", lambda: [str(tmp_path)])
    with pytest.raises(notices.pdf.FontsMissing, match="Noto Serif CJK SC、Noto Sans CJK SC.*fonts-noto-cjk"):
        notices.pdf.load_fonts()


# ------------------------------------------------------------------ the one-time notice

BENCH = {"in_park": True, "industry_code": "C3589", "violations": None, "device_registrations": [
    {"certificate_no": "川械注准20252170101", "product_name": "隐形矫治器", "origin": "self_developed",
     "obtained_on": "2025-11-15", "innovative": False},
    {"certificate_no": "国械注进20253170102", "product_name": "种植体", "origin": "introduced",
     "obtained_on": "2026-01-10", "device_class": "III"},
    {"certificate_no": "川械注准20242170103", "product_name": "义齿基托树脂", "origin": "introduced",
     "obtained_on": "2024-06-01", "device_class": "II"},
    {"certificate_no": "川资械备20250104号", "product_name": "牙科手术器械", "origin": "self_developed",
     "obtained_on": "2025-12-01", "device_class": "I"}]}


def test_one_time_notice_lists_only_materials_of_criteria_not_passed(covering, interp_eval):
    checked = 0
    for p, resp in [*covering, (BENCH | {"uscc": "91512000MA62XY001U", "name": "甲"}, None)]:
        resp = resp or interp_eval.evaluate(p, AS_OF, awarded=set())
        n = notice_input("one_time", interp_eval, p, resp)
        try:
            html = RENDERER.render_html(n)
        except NoticeNotApplicable:
            continue
        for item, sec in zip(n.items, sections(html), strict=True):
            r = item.result
            shown = {m.id: m.name + (f"（{m.description}）" if m.description else "") for m in r.required_materials}
            wanted = {shown[m] for c in r.criteria if c.outcome != "pass" for m in c.materials}
            raw = sec.get("missing-material", [])
            listed = [x.removesuffix("（可容缺：可先签署承诺，在承诺期限内补交）").removesuffix("（关于企业本身，各注册证共用一份）")
                      for x in raw]
            assert len(listed) == len(set(listed)) and set(listed) == wanted, r.benefit_id
            # 容缺 is offered for a deferrable proof, never for one a failed condition already decides
            decided = {shown[m] for c in r.criteria if c.outcome == "fail" for m in c.materials}
            for x, name in zip(raw, listed):
                assert ("可容缺" in x) == (name not in decided and any(
                    shown.get(m.id) == name and m.deferrable for m in interp_eval.book.benefits[r.benefit_id].spec.materials)), x
            failed = [c.text + ((c.provisional_note or PROVISIONAL_CRITERION) if c.provisional else "") for c in r.criteria if c.outcome == "fail"]
            assert sorted(sec.get("criterion-text", [])) == sorted(failed)
            checked += 1
    assert checked >= 5


def test_one_time_notice_is_small_and_keeps_its_signature_on_one_page(interp_eval):
    p = BENCH | {"uscc": "91512000MA62XY001U", "name": "资阳牙谷精密齿科器械有限公司"}
    resp = interp_eval.evaluate(p, AS_OF, awarded=set())
    pdf = pdf_of(notice_input("one_time", interp_eval, p, resp))
    assert len(pdf) <= 120 * 1024                                   # issue 14: ≤ 120 KiB
    office, day = SETTINGS.issuing_office, cn_date(ISSUED)
    pages_seen = set()
    # Grow the last paragraph a line at a time: the signature walks down the last page and
    # over the page break; wherever it lands, its office, date and contact lines stay together.
    for extra in range(0, 64):
        settings = SETTINGS.model_copy(update={"submission_how": SETTINGS.submission_how + "补" * 38 * extra})
        pages = pdf_pages(pdf_of(notice_input("one_time", interp_eval, p, resp, settings)), "-layout")
        pages_seen.add(len(pages))
        where = {name: [i for i, text in enumerate(pages)
                        if any(line.strip() == needle for line in text.splitlines())]
                 for name, needle in (("office", office), ("date", day))}
        contact = [i for i, text in enumerate(pages) if "联系电话" in text]
        closing = [i for i, text in enumerate(pages) if "逾期未补正的" in text]     # never alone on a page
        assert where["office"] == where["date"] == contact == closing == [len(pages) - 1], (extra, where, contact)
    assert len(pages_seen) >= 2                                       # it did cross a page break


# ------------------------------------------------------------------ self-check and tax notice

def test_selfcheck_has_no_number_no_signature_and_says_for_reference_only(covering, interp_eval):
    p, resp = covering[0]
    n = notice_input("selfcheck", interp_eval, p, resp)
    for text in (html_text(RENDERER.render_html(n)), pdf_text(pdf_of(n))):
        assert "仅供参考" in text
        assert "资高新惠" not in text and "〔2026〕" not in text
        assert SETTINGS.issuing_office not in text and SETTINGS.contact_phone not in text
        # addressed to no one: it names the enterprise it is about
        assert f"企业名称：{p['name']}" in text and f"{p['name']}：" not in text


def test_a_selfcheck_says_when_the_window_it_names_no_longer_accepts(interp_eval):
    """The page says a certificate's window is 已截止; its printed 自测结果 once dropped that and
    printed the amount beside the old window's dates."""
    p = {**BENCH, "uscc": make_uscc("91512000MA0000901"), "name": "资阳自测截止测试有限公司",
         "device_registrations": [BENCH["device_registrations"][0] | {"obtained_on": "2026-01-15"}]}
    late = date(2026, 5, 6)
    resp = interp_eval.self_check(p, late, awarded=set())           # its own window: 2026 H1
    text = html_text(RENDERER.render_html(notice_input("selfcheck", interp_eval, p, resp, issued_on=late)))
    assert "已截止，不再受理" in text, text[:2000]
    early = notice_input("selfcheck", interp_eval, p, interp_eval.self_check(p, date(2026, 3, 20), awarded=set()),
                         issued_on=date(2026, 3, 20))
    assert "已截止" not in html_text(RENDERER.render_html(early))


TAX_PROFILE = {"uscc": "91512000MA62XY001U", "name": "资阳牙谷精密齿科器械有限公司", "in_park": True,
               "industry_code": "C3589", "tax_collection": "audit", "employees_avg": 120,
               "total_assets_avg_cny": 30_000_000, "taxable_income_cny": 1_800_000, "restricted_industry": False,
               "rd_excluded_industry": False, "rd_expense_cny": 2_400_000, "tax_credit_rating": "A",
               "hnte_certificate": {"number": "GR202451000123", "issued_on": "2024-12-06"},
               "western_encouraged_share": 0.72, "on_serious_dishonest_list": False, "violations": [],
               "device_registrations": []}


def test_tax_notice_shows_records_to_keep_until_when_and_conflicts(interp_eval):
    resp = interp_eval.evaluate(TAX_PROFILE, AS_OF, awarded=set())
    n = notice_input("tax_self_assessment", interp_eval, TAX_PROFILE, resp)
    claimed = [t for t in n.tax if t.status == "eligible" and t.records_to_keep]
    assert claimed and n.conflicts
    for text in (html_text(RENDERER.render_html(n)), pdf_text(pdf_of(n))):
        text = "".join(text.split())
        assert "留存备查资料" in text
        for t in claimed:
            assert all("".join(r.split()) in text for r in t.records_to_keep)
            assert t.keep_until is None or cn_date(t.keep_until) in text
        assert all("".join(c.reason.split()) in text for c in n.conflicts)
        assert "国家税务总局资阳市税务局" in text                         # signed, tax office named


def test_award_notice_totals_and_marks_reference_amounts(interp_eval):
    p = TAX_PROFILE | {"device_registrations": [
        {"certificate_no": f"川械注准2026217010{k}", "product_name": f"口腔扫描仪{k}", "origin": "self_developed",
         "obtained_on": "2026-01-15", "device_class": "II", "innovative": k == 1} for k in range(2)]}
    n = notice_input("award", interp_eval, p, interp_eval.evaluate(p, AS_OF, awarded=set()))
    view = build(n)
    assert len(view["items"]) == 2 and view["total"]
    text = html_text(RENDERER.render_html(n))
    assert view["total"] in text and SETTINGS.payment_commitment in text
    if view["total_provisional"]:
        assert "参考金额，以当期申报通知为准" in text


# ------------------------------------------------------------------ templates and settings

def test_override_templates_render_both_formats_and_stay_sandboxed(tmp_path, interp_eval):
    (tmp_path / "award.j2").write_text('{% extends "_base.j2" %}{% block body %}'
                                       '{% call m.p() %}本地定制："{{ enterprise_name }}"*{% endcall %}{% endblock %}',
                                       encoding="utf-8")
    (tmp_path / "one_time.j2").write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    r = NoticeRenderer(tmp_path)
    p = TAX_PROFILE | {"name": HOSTILE, "device_registrations": [
        {"certificate_no": "川械注准20262170101", "origin": "self_developed", "obtained_on": "2026-01-15"}]}
    n = notice_input("award", interp_eval, p, interp_eval.evaluate(p, AS_OF, awarded=set()))
    want = f'本地定制："{HOSTILE}"*'
    assert want in html_text(r.render_html(n))
    assert "".join(want.split()) in pdf_text(typst_to_pdf(r.render_typst(n)))
    failing = p | {"in_park": False}
    with pytest.raises(SecurityError):
        r.render_html(notice_input("one_time", interp_eval, failing, interp_eval.evaluate(failing, AS_OF)))


def test_settings_file_problems_are_all_named(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text(textwrap.dedent("""\
        issuing_office: {value: 资阳高新区管委会, note: 落款}
        reconsideration_days: {value: 0, note: 设置项}
        contact_phone: 12345
        colour: {value: red, note: x}
        """), encoding="utf-8")
    with pytest.raises(SettingsError) as exc:
        load_settings(bad)
    text = "\n".join(exc.value.problems)
    assert "s.yaml:2: reconsideration_days" in text and "s.yaml:3: contact_phone" in text
    assert "s.yaml:4: colour" in text and "submission_place" in text


def test_shipped_settings_name_the_unset_phone(monkeypatch):
    monkeypatch.delenv("YAGU_NOTICE_SETTINGS")
    shipped = load_settings(settings_path())
    assert shipped.unset() == ["联系电话"]


# ------------------------------------------------------------------ stored applications

def _failing(i: int) -> dict:
    return BENCH | {"uscc": make_uscc(f"91512000MA{i:07d}"), "name": f"资阳牙谷测试{i}口腔医疗器械有限公司"}


def _window(db, profiles: list[dict]) -> list[str]:
    W.open_window(db, "2026-H1")
    apps = [submit_application(db, "2026-H1", p, channel="web", today=TODAY).application_id for p in profiles]
    evaluate_window(db, "2026-H1")
    return apps


def _numbers(db, kind: str) -> list[str]:
    with db.read_session() as s:
        return sorted(s.scalars(select(Notice.number).where(Notice.kind == kind)))


@pytest.mark.timeout(300)
def test_numbers_are_gapless_stable_and_never_taken_by_a_refused_notice(db):
    ok = TAX_PROFILE | {"device_registrations": [{"certificate_no": "川械注准20262170101", "origin": "self_developed",
                                                  "obtained_on": "2026-01-15", "device_class": "II"}]}
    apps = _window(db, [_failing(1), ok, _failing(2)])
    assert cases.issue_one_time_notices(db, "2026-H1", today=TODAY) == 2
    assert _numbers(db, "one_time") == ["资高新惠告〔2026〕第0001号", "资高新惠告〔2026〕第0002号"]

    unset = NoticeService(db, settings=load_settings(rules_dir() / "notice-settings.yaml"))
    with pytest.raises(Conflict, match="联系电话"):
        unset.render(apps[0], "tax_self_assessment", "pdf", issued_on=ISSUED)
    svc = NoticeService(db, settings=SETTINGS)
    for app, kind in ((apps[1], "one_time"), (apps[0], "award"), (apps[0], "non_support"), (apps[0], "selfcheck")):
        with pytest.raises(Conflict):
            svc.render(app, kind, "pdf", issued_on=ISSUED)
    assert _numbers(db, "tax_self_assessment") == [] and _numbers(db, "award") == []

    first = svc.render(apps[2], "tax_self_assessment", "pdf", issued_on=ISSUED)
    second = svc.render(apps[0], "tax_self_assessment", "html", issued_on=date(2026, 4, 2))
    again = svc.render(apps[2], "tax_self_assessment", "pdf", issued_on=date(2026, 5, 1))
    assert (first.number, second.number) == ("资高新惠税〔2026〕第0001号", "资高新惠税〔2026〕第0002号")
    assert again.number == first.number
    assert cn_date(ISSUED) in pdf_text(again.data)                   # the date of first issue
    assert first.filename == "资阳牙谷测试2口腔医疗器械有限公司-税收优惠自行判别结果.pdf"
    one_time = svc.render(apps[0], "one_time", "pdf")
    assert one_time.number == "资高新惠告〔2026〕第0001号"
    assert one_time.number in pdf_text(one_time.data) and cn_date(TODAY) in pdf_text(one_time.data)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 4
    # the year's second window continues the year's sequence (two documents never share a
    # number); the next year starts again
    numbers = []
    for wid, day in (("2026-H2", date(2026, 9, 10)), ("2027-H1", date(2027, 3, 10))):
        W.open_window(db, wid)
        app = submit_application(db, wid, _failing(7), channel="web", today=day).application_id
        evaluate_window(db, wid)
        numbers.append(svc.render(app, "tax_self_assessment", "pdf", issued_on=day).number)
    assert numbers == ["资高新惠税〔2026〕第0003号", "资高新惠税〔2027〕第0001号"]


@pytest.fixture
def sqlite_db(tmp_path):
    from store.db import Database

    url, _ = make_store_url("sqlite", tmp_path)
    d = Database(url)
    yield d
    d.dispose()


@pytest.mark.timeout(300)
def test_notice_after_the_rules_changed_shows_the_decision_as_made(sqlite_db, tmp_path, book):
    (app,) = _window(sqlite_db, [_failing(3) | {"in_park": False}])
    cases.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    before = pdf_text(NoticeService(sqlite_db, settings=SETTINGS).render(app, "one_time", "pdf").data)
    old = next(c.text for c in book.benefits["device-registration-grant"].spec.criteria if c.id == "in_park")
    assert "".join(old.split()) in before

    rules = tmp_path / "rules"
    shutil.copytree(book.root, rules)
    grant = rules / "benefits" / "device-registration-grant.yaml"
    grant.write_text(grant.read_text(encoding="utf-8").replace(old, "新规则：企业须在园区内实际经营"), encoding="utf-8")
    shipped = rulesets.current()
    rulesets.use(Evaluator(load_rulebook(rules)))
    try:
        assert rulesets.current().ruleset_version != shipped.ruleset_version
        after = NoticeService(sqlite_db, settings=SETTINGS).render(app, "one_time", "pdf")
    finally:
        rulesets.use(shipped)
    text = pdf_text(after.data)
    assert "".join(old.split()) in text and "新规则" not in text
    assert text == before


@pytest.mark.timeout(300)
def test_a_one_time_notice_reads_as_issued_after_the_correction(sqlite_db):
    """The 补正 judges the application again; its one-time notice, opened afterwards, still says
    what it said when it was issued (the page shows the new result)."""
    (app,) = _window(sqlite_db, [_failing(6)])
    cases.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    asked = cases.detail(sqlite_db, app, today=TODAY).correction
    assert asked.facts == ["on_serious_dishonest_list", "violations"], asked.facts
    svc = NoticeService(sqlite_db, settings=SETTINGS)
    before = svc.render(app, "one_time", "html")
    assert "违法" in html_text(before.data.decode())
    # it says how to answer online: where, with which application number, and a lost code
    said = html_text(before.data.decode())
    assert f"输入申报编号 {app} 和查询码" in said and "由工作人员重新发放" in said, said
    after_fix = cases.submit_correction(sqlite_db, app, {"on_serious_dishonest_list": False, "violations": []},
                                        proofs(sqlite_db, app), actor="企业", today=TODAY)
    assert after_fix.state == "corrected"
    assert all(g.result.missing_facts == [] for g in after_fix.grants)          # the page: judged again
    again = svc.render(app, "one_time", "html")
    assert again.number == before.number and again.data == before.data


def test_a_one_time_notice_first_opened_after_the_correction_reads_what_was_given_then(sqlite_db):
    """Opened for the first time after the 补正, the notice asks for the facts that were missing
    when it was issued, in words; it does not call the answers since given unreadable (it once
    printed （填写的“self_developed”无法识别，请核对） in an official notice)."""
    p = _failing(9)
    p["device_registrations"] = [{k: v for k, v in r.items() if k != "origin"} for r in p["device_registrations"]]
    (app,) = _window(sqlite_db, [p])
    cases.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    asked = cases.detail(sqlite_db, app, today=TODAY).correction.facts
    origin = next(f for f in asked if f.endswith(".origin"))
    answers = {f: ("self_developed" if f.endswith(".origin") else [] if f == "violations" else False)
               for f in asked}
    assert cases.submit_correction(sqlite_db, app, answers, proofs(sqlite_db, app), actor="企业",
                                   today=TODAY).state == "corrected"
    text = html_text(NoticeService(sqlite_db, settings=SETTINGS).render(app, "one_time", "html").data.decode())
    assert "来源" in text and "无法识别" not in text and "self_developed" not in text, text
    assert origin.startswith("device_registrations[")


@pytest.mark.timeout(300)
def test_a_refusal_after_an_unanswered_correction_states_what_could_not_be_established(sqlite_db):
    """An application whose facts stayed missing past its 补正 deadline is refused at close; its
    不予支持告知书 names every condition that could not be established and why (it once said
    "理由和依据如下" and then nothing)."""
    from store import awards

    (app,) = _window(sqlite_db, [_failing(7)])
    cases.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    unknown = [c.text for g in cases.detail(sqlite_db, app, today=TODAY).grants for c in g.result.criteria
               if c.outcome == "unknown"]
    assert unknown
    awards.publish(sqlite_db, "2026-H1", today=date(2026, 4, 20))
    awards.close_window(sqlite_db, "2026-H1", today=date(2026, 5, 20), actor="测试")
    doc = NoticeService(sqlite_db, settings=SETTINGS).render(app, "non_support", "pdf")
    text = "".join(pdf_text(doc.data).split())
    assert "无法认定符合条件" in text
    for c in unknown:
        assert "".join(c.split()) in text, c


@pytest.mark.timeout(300)
def test_no_correction_period_starts_while_the_notice_cannot_be_printed(sqlite_db):
    """With the contact phone unset, 发出一次性告知书 is refused before any number is taken or
    any 补正 deadline starts (it once started the deadlines of notices nobody could open); the
    refusal names the setting, not a file."""
    (app,) = _window(sqlite_db, [_failing(8)])
    unset = NoticeService(sqlite_db, settings=load_settings(rules_dir() / "notice-settings.yaml"))
    with pytest.raises(Conflict, match="联系电话") as refused:
        unset.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    assert "rules/" not in refused.value.message and ".yaml" not in refused.value.message
    d = cases.detail(sqlite_db, app, today=TODAY)
    assert d.state == "judged" and d.correction_due is None and not d.notices
    assert NoticeService(sqlite_db, settings=SETTINGS).issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY) == 1
    assert cases.detail(sqlite_db, app, today=TODAY).state == "correction"


@pytest.mark.timeout(300)
def test_bundle_zips_one_pdf_per_notice_named_by_enterprise_and_kind(sqlite_db):
    # a name too long for a file name is cut; the notice's title never is
    long = _failing(5) | {"name": "资阳牙谷测试5口腔医疗器械有限公司" + "（四川省资阳市高新技术产业开发区中国牙谷园区）" * 5}
    apps = _window(sqlite_db, [_failing(4), long])
    cases.issue_one_time_notices(sqlite_db, "2026-H1", today=TODAY)
    for args, exts in (({"window_id": "2026-H1"}, {".pdf"}), ({"window_id": "2026-H1", "html": True}, {".pdf", ".html"})):
        job = jobs.submit(sqlite_db, "notices.bundle", args, actor="测试")
        jobs.run_pending(sqlite_db)
        v = jobs.get(sqlite_db, job)
        assert v.state == "succeeded", v
        _, data = jobs.file(sqlite_db, job, v.files[0])
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
        names = [e.filename for e in entries]
        # dated in Beijing time, which staff unzipping it read (the machine's clock is UTC)
        made = {datetime(*e.date_time, tzinfo=BEIJING) for e in entries}
        assert all(abs(m - datetime.now(BEIJING)) < timedelta(minutes=10) for m in made), made
        want = {f"{name}-{KINDS[k].title}" for name in ("资阳牙谷测试4口腔医疗器械有限公司", long["name"][:80])
                for k in ("one_time", "tax_self_assessment")}
        assert {n.rsplit(".", 1)[0] for n in names} == want
        assert {"." + n.rsplit(".", 1)[1] for n in names} == exts and len(names) == len(want) * len(exts)
        assert v.result["notices"] == 4 and v.result["applications"] == len(apps)


@pytest.mark.timeout(300)
def test_a_window_paying_one_certificate_and_refusing_another_tells_of_both(sqlite_db):
    """An application paid for one certificate and refused another gets its 兑现通知书 for the
    first and a 不予支持告知书 for the second, with the reason and the route of review; before,
    the refusal went unsaid (only fully refused applications were told)."""
    from store import awards

    regs = [{"certificate_no": "川械注准20262170101", "origin": "self_developed", "obtained_on": "2026-01-15",
             "device_class": "II"},
            {"certificate_no": "川械注准20242170102", "origin": "self_developed", "obtained_on": "2024-01-15",
             "device_class": "II"}]                          # obtained before the window's coverage
    (app,) = _window(sqlite_db, [TAX_PROFILE | {"device_registrations": regs}])
    statuses = {g.result.subject.id: g.final_status for g in cases.detail(sqlite_db, app).grants}
    assert statuses == {"川械注准20262170101": "eligible", "川械注准20242170102": "ineligible"}
    assert awards.close_preview(sqlite_db, "2026-H1")["non_support_notices"] == 1
    awards.publish(sqlite_db, "2026-H1", today=date(2026, 7, 1))
    res = awards.close_window(sqlite_db, "2026-H1", today=date(2026, 7, 20))
    assert res.refused == [] and res.partly_refused == [app] and res.non_support_notices == 1
    svc = NoticeService(sqlite_db, settings=SETTINGS)
    assert {"non_support", "award"} <= set(svc.kinds_for(cases.detail(sqlite_db, app)))   # on its page
    assert _numbers(sqlite_db, "non_support") == []          # numbered when first issued, as 兑现通知书
    refusal = pdf_text(svc.render(app, "non_support", "pdf").data)
    assert _numbers(sqlite_db, "non_support") == ["资高新惠不〔2026〕第0001号"]
    paid = pdf_text(svc.render(app, "award", "pdf").data)
    assert "20242170102" in refusal and "20262170101" not in refusal and "行政复议" in refusal
    assert "20262170101" in paid and "20242170102" not in paid
