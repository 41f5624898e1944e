"""Notices: what the enterprise reads in the rendered HTML/PDF (not template variables)."""
import datetime as dt
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jinja2.exceptions import SecurityError

from notices.context import (NoticeNotApplicable, SettingsError, load_settings, make_context)
from notices.fields import FIELD_NAMES, field_name
from notices.pdf import html_to_pdf
from notices.render import NoticeRenderer
from engine.workdays import UnknownYearError, WorkdayCalendar

D = dt.date
ENTERPRISE = {"uscc": "91512000MA62XY001U", "name": "资阳示例口腔医疗器械有限公司"}
XSS_NAME = "<script>alert(1)</script>有限公司"
RENDERER = NoticeRenderer()
SETTINGS = load_settings()


class TextExtractor(HTMLParser):
    """Visible text of a document, plus the text of elements carrying given classes,
    grouped by the enclosing <section data-benefit=...>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks, self.tags, self.stack, self.by_class = [], [], [], {}
        self.section = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag in ("style", "script", "title"):
            self._skip += 1
        if tag == "section":
            self.section = attrs.get("data-benefit")
        if tag in ("br", "meta", "link"):
            return
        self.stack.append((tag, (attrs.get("class") or "").split(), []))

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1
        while self.stack:
            t, classes, buf = self.stack.pop()
            text = "".join(buf).strip()
            for c in classes:
                self.by_class.setdefault(c, []).append((self.section, text))
            if self.stack:
                self.stack[-1][2].append("".join(buf))
            if t == tag:
                break
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        if self._skip:
            return
        self.chunks.append(data)
        if self.stack:
            self.stack[-1][2].append(data)

    @property
    def text(self):
        return "".join(self.chunks)


def extract(html):
    p = TextExtractor()
    p.feed(html)
    p.close()
    return p


def render(kind, decisions, issued_on=D(2026, 9, 30), enterprise=ENTERPRISE, **kw):
    ctx = make_context(kind, enterprise, decisions, issued_on, settings=SETTINGS,
                       notice_number="资高新惠告〔2026〕第0001号", **kw)
    return RENDERER.render_html(ctx)


def pdf_text(html, tmp_path):
    pdf = tmp_path / "n.pdf"
    pdf.write_bytes(html_to_pdf(html))
    out = subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return "".join(out.split())   # the layout wraps lines; compare without whitespace


# ------------------------------------------------------------------ generated decisions

# Texts include characters that must be escaped, so a missing autoescape shows up too.
_body = st.text(alphabet="资阳牙谷企业注册证研发费用纳税信用<>&\"'甲乙丙丁", min_size=1, max_size=12)
FACT_PATHS = sorted(FIELD_NAMES) + [f"device_registrations[{i}].{f}" for i in range(3)
                                    for f in ("obtained_on", "origin", "device_class")]


@st.composite
def decision_sets(draw):
    counter = iter(range(10_000))
    n_materials = draw(st.integers(1, 8))
    materials = [{"id": f"m{j}", "name": f"〔材料{j:03d}〕{draw(_body)}"} for j in range(n_materials)]
    decisions = []
    for b in range(draw(st.integers(1, 4))):
        criteria = []
        for _ in range(draw(st.integers(1, 6))):
            i = next(counter)
            outcome = draw(st.sampled_from(["pass", "fail", "unknown"]))
            criteria.append({
                "id": f"c{i}", "text": f"〈条件{i:04d}〉{draw(_body)}", "outcome": outcome,
                "observed": {"in_park": draw(st.sampled_from([True, False, None]))},
                "threshold": draw(st.sampled_from([None, "是", {"tax_credit_rating": ["A", "B"]}])),
                "legal_basis": [f"《依据{i:04d}号》"],
                "materials": draw(st.lists(st.sampled_from([m["id"] for m in materials]), max_size=3, unique=True)),
            })
        outcomes = {c["outcome"] for c in criteria}
        status = "ineligible" if "fail" in outcomes else "needs_info" if "unknown" in outcomes else "eligible"
        missing = draw(st.lists(st.sampled_from(FACT_PATHS), min_size=1 if status == "needs_info" else 0,
                                max_size=4, unique=True)) if "unknown" in outcomes else []
        used = {m for c in criteria for m in c["materials"]}
        decisions.append({
            "benefit_id": f"benefit-{b}", "title": f"《政策事项{b}》", "kind": "grant",
            "subject": None, "status": status, "amount_cny": None, "amount_provisional": True,
            "amount_note": None, "criteria": criteria, "missing_facts": missing,
            "required_materials": [dict(m, proves=[]) for m in materials if m["id"] in used],
        })
    return decisions


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decisions=decision_sets())
def test_one_time_notice_lists_exactly_what_is_wrong_or_missing(decisions):
    applicable = [d for d in decisions if d["status"] in ("needs_info", "ineligible")]
    if not applicable:
        with pytest.raises(NoticeNotApplicable):
            render("one_time", decisions)
        return
    doc = extract(render("one_time", decisions))
    text = doc.text
    names = {m["id"]: m["name"] for d in decisions for m in d["required_materials"]}
    for d in decisions:
        sec = d["benefit_id"]
        covered = d in applicable
        failed = [c["text"] for c in d["criteria"] if c["outcome"] == "fail"] if covered else []
        gaps = [c for c in d["criteria"] if c["outcome"] in ("fail", "unknown")] if covered else []
        want_materials = {names[m] for c in gaps for m in c["materials"]}
        want_facts = {field_name(p) for p in d["missing_facts"]} if covered else set()
        got_failed = [t for s, t in doc.by_class.get("criterion-text", []) if s == sec]
        got_materials = [t for s, t in doc.by_class.get("missing-material", []) if s == sec]
        got_facts = [t for s, t in doc.by_class.get("missing-fact", []) if s == sec]
        assert sorted(got_failed) == sorted(failed)
        assert sorted(got_materials) == sorted(want_materials)            # each once, none extra
        assert {f.split(" （")[0].strip() for f in got_facts} == want_facts
        assert len(got_facts) == len(want_facts)
        for c in d["criteria"]:
            if not covered or c["outcome"] == "pass":
                assert c["text"] not in text                        # nothing that is in order
            if c["outcome"] == "fail" and covered:
                assert c["legal_basis"][0] in text
    # a material only proving passed criteria (or only in eligible items) is never asked for
    asked = {names[m] for d in applicable for c in d["criteria"] if c["outcome"] != "pass" for m in c["materials"]}
    for name in set(names.values()) - asked:
        assert name not in text


def _grant(status, criteria, **kw):
    d = {"benefit_id": "device-registration-grant", "title": "Ⅱ类、Ⅲ类医疗器械产品注册证资金支持",
         "kind": "grant", "subject": {"type": "certificate", "id": "川械注准20252170031"},
         "status": status, "amount_cny": 300000, "amount_provisional": True, "amount_note": "",
         "criteria": criteria, "missing_facts": [], "required_materials": []}
    d.update(kw)
    return d


FAIL_IN_PARK = {"id": "in_park", "text": "注册地在资阳高新区（中国牙谷）", "outcome": "fail",
                "observed": {"in_park": False}, "threshold": "是",
                "legal_basis": ["《资阳市打造\"中国牙谷\"最优营商环境工作方案》重点任务7"], "materials": ["license"]}
UNKNOWN_RATING = {"id": "rating", "text": "纳税信用级别为A级或B级", "outcome": "unknown",
                  "observed": {"tax_credit_rating": None}, "threshold": None, "legal_basis": ["2025年第7号"],
                  "materials": ["rating_proof"]}


def test_one_time_notice_content_and_deadline():
    d = _grant("ineligible", [FAIL_IN_PARK, UNKNOWN_RATING], missing_facts=["tax_credit_rating",
               "device_registrations[0].obtained_on"],
               required_materials=[{"id": "license", "name": "营业执照副本", "proves": ["in_park"]},
                                   {"id": "rating_proof", "name": "纳税信用级别证明", "proves": ["rating"]}])
    text = extract(render("one_time", [d], issued_on=D(2026, 9, 30))).text
    assert "一次性告知书" in text and "资高新惠告〔2026〕第0001号" in text
    assert "注册地是否在资阳高新区（中国牙谷）：否" in text        # the enterprise's value, in Chinese
    assert "纳税信用级别" in text and "医疗器械注册证第1项的取得日期" in text
    # 5 working days after 9/30: 10/1–10/7 off, 10/8, 10/9, 10/10 (Sat, make-up), 10/12, 10/13
    assert "2026年10月13日" in text
    assert SETTINGS.submission_place in text and SETTINGS.contact_phone in text


def test_one_time_deadline_needing_unknown_year_fails(tmp_path):
    d = _grant("needs_info", [UNKNOWN_RATING], missing_facts=["tax_credit_rating"])
    with pytest.raises(UnknownYearError, match="2027.yaml"):
        make_context("one_time", ENTERPRISE, [d], D(2026, 12, 28), settings=SETTINGS,
                     calendar=WorkdayCalendar(tmp_path))


def test_script_name_is_text_in_html_and_pdf(tmp_path):
    d = _grant("ineligible", [FAIL_IN_PARK])
    html = render("one_time", [d], enterprise={"uscc": ENTERPRISE["uscc"], "name": XSS_NAME})
    doc = extract(html)
    assert "script" not in doc.tags
    assert XSS_NAME in doc.text
    assert "<script>" not in html
    assert XSS_NAME in pdf_text(html, tmp_path)


def test_pdf_text_is_extractable_chinese(tmp_path):
    d = _grant("ineligible", [FAIL_IN_PARK])
    text = pdf_text(render("non_support", [d]), tmp_path)
    assert "不予支持告知书" in text
    assert "注册地在资阳高新区（中国牙谷）" in text
    assert "申请行政复议" in text


def test_award_notice_labels_reference_amounts():
    provisional = _grant("eligible", [])
    fixed = _grant("eligible", [], subject={"type": "certificate", "id": "国械注准20253170045"},
                   amount_cny=500000, amount_provisional=False)
    doc = extract(render("award", [provisional, fixed]))
    rows = [t for _, t in doc.by_class["award"]]
    assert len(rows) == 2
    assert "300,000.00 元" in rows[0] and "参考金额，以当期申报通知为准" in rows[0]
    assert "500,000.00 元" in rows[1] and "参考金额" not in rows[1]
    assert "800,000.00 元" in doc.text                      # total
    assert SETTINGS.payment_commitment in doc.text


def test_non_support_notice_reasons_and_remedies():
    d = _grant("ineligible", [FAIL_IN_PARK, {**UNKNOWN_RATING, "outcome": "pass", "text": "已满足的条件"}])
    text = extract(render("non_support", [d])).text
    assert "注册地在资阳高新区（中国牙谷）" in text and "重点任务7" in text
    assert "已满足的条件" not in text
    assert "60日内" in text and "申请行政复议" in text and "6个月内" in text and "提起行政诉讼" in text


def test_tax_result_conflict_claim_and_records():
    common = {"kind": "tax", "subject": None, "amount_cny": None, "amount_provisional": False,
              "amount_note": None, "missing_facts": [], "required_materials": []}
    hnte = {**common, "benefit_id": "hnte-reduced-rate", "title": "高新技术企业减按15%税率", "status": "eligible",
            "criteria": [{"id": "cert", "text": "持有有效期内的高新技术企业证书", "outcome": "pass",
                          "observed": {"hnte_certificate.issued_on": "2024-11-20"}, "threshold": None,
                          "legal_basis": ["国科发火〔2016〕32号"], "materials": []}],
            "how_to_claim": "在年度企业所得税纳税申报表A107040填报",
            "records_to_keep": ["高新技术企业资格证书", "年度研发费用结构明细表"], "keep_until": "2036-05-31"}
    west = {**common, "benefit_id": "western-development-rate", "title": "西部大开发鼓励类产业企业减按15%税率",
            "status": "eligible", "criteria": [], "records_to_keep": [], "keep_until": "2036-05-31"}
    small = {**common, "benefit_id": "small-low-profit-cit", "title": "小型微利企业所得税优惠",
             "status": "ineligible", "criteria": [{"id": "income", "text": "年度应纳税所得额不超过300万元",
             "outcome": "fail", "observed": {"taxable_income_cny": 4200000}, "threshold": "3000000",
             "legal_basis": ["财政部 税务总局公告2023年第12号 第五条"], "materials": []}],
             "records_to_keep": ["不应出现的资料"], "keep_until": None}
    text = extract(render("tax_self_assessment", [hnte, west, small], tax_year=2025)).text
    assert "只能选择其中一项" in text and "高新技术企业减按15%税率" in text
    assert "A107040" in text
    assert "高新技术企业资格证书" in text and "2036年5月31日" in text
    assert "4,200,000.00 元" in text and "不符合" in text
    assert "不应出现的资料" not in text          # keep-records only for preferences claimed


def test_notice_kind_without_matching_results_is_refused():
    with pytest.raises(NoticeNotApplicable, match="兑现通知书"):
        render("award", [_grant("ineligible", [FAIL_IN_PARK])])


def test_override_template_renders_and_cannot_reach_python_internals(tmp_path):
    (tmp_path / "award.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block body %}<p>本地定制：{{ enterprise_name }}</p>{% endblock %}',
        encoding="utf-8")
    (tmp_path / "one_time.html.j2").write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    (tmp_path / "non_support.html.j2").write_text(
        "{{ settings.__class__.__init__.__globals__ }}", encoding="utf-8")
    r = NoticeRenderer(tmp_path)
    ctx = lambda kind, d: make_context(kind, {**ENTERPRISE, "name": XSS_NAME}, [d], D(2026, 9, 30),
                                       settings=SETTINGS)
    text = extract(r.render_html(ctx("award", _grant("eligible", [])))).text
    assert "本地定制：" + XSS_NAME in text                       # still escaped, built-in base used
    with pytest.raises(SecurityError):
        r.render_html(ctx("one_time", _grant("ineligible", [FAIL_IN_PARK])))
    with pytest.raises(SecurityError):
        r.render_html(ctx("non_support", _grant("ineligible", [FAIL_IN_PARK])))


def test_override_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "award.html.j2").write_text("环境变量模板 {{ number }}", encoding="utf-8")
    monkeypatch.setenv("YAGU_NOTICE_TEMPLATES", str(tmp_path))
    ctx = make_context("award", ENTERPRISE, [_grant("eligible", [])], D(2026, 9, 30), settings=SETTINGS,
                       notice_number="资高新惠兑〔2026〕第0007号")
    assert NoticeRenderer().render_html(ctx) == "环境变量模板 资高新惠兑〔2026〕第0007号"


def test_bad_settings_file_lists_every_problem(tmp_path):
    src = load_settings()
    bad = tmp_path / "s.yaml"
    bad.write_text(textwrap.dedent("""\
        issuing_office: {value: 资阳高新区管委会, note: 落款}
        supplement_workdays: {value: 0, note: 设置项}
        contact_phone: 12345
        colour: {value: red, note: x}
        """), encoding="utf-8")
    with pytest.raises(SettingsError) as exc:
        load_settings(bad)
    text = "\n".join(exc.value.problems)
    assert "s.yaml:2: supplement_workdays" in text
    assert "s.yaml:3: contact_phone" in text
    assert "s.yaml:4: colour" in text
    assert "submission_place" in text                      # missing ones are named too
    assert src.supplement_workdays == 5


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")
def test_all_four_kinds_render_to_pdf(tmp_path):
    d_fail = _grant("ineligible", [FAIL_IN_PARK])
    d_ok = _grant("eligible", [])
    tax = {**d_ok, "kind": "tax", "benefit_id": "rd-super-deduction", "title": "研发费用加计扣除",
           "subject": None, "records_to_keep": ["研发项目计划书"], "keep_until": "2036-05-31"}
    for kind, decs, needle in [("one_time", [d_fail], "一次性告知书"), ("award", [d_ok], "兑现通知书"),
                               ("non_support", [d_fail], "不予支持告知书"),
                               ("tax_self_assessment", [tax], "研发项目计划书")]:
        assert needle in pdf_text(render(kind, decs), tmp_path)


# ------------------------------------------------------------------ with the store

def _uscc(i):
    chars, w = "0123456789ABCDEFGHJKLMNPQRTUWXY", [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    body = f"9151200{i:010d}"[:17]
    return body + chars[(31 - sum(chars.index(c) * x for c, x in zip(body, w)) % 31) % 31]


@pytest.fixture
def store_window(tmp_path, monkeypatch):
    from store import Database
    from store.windows import evaluate_window, open_window, submit_application

    url = f"sqlite:///{tmp_path}/yagu.db"
    monkeypatch.setenv("YAGU_DATABASE_URL", url)
    db = Database(url)
    db.upgrade()
    open_window(db, "2026-H1")
    apps = []
    for i, name in enumerate([XSS_NAME, "资阳甲口腔医疗器械有限公司", "资阳乙口腔医疗器械有限公司"]):
        profile = {"uscc": _uscc(i + 1), "name": name, "in_park": i != 2, "tax_credit_rating": None,
                   "device_registrations": [{"certificate_no": f"川械注准2025217003{i}", "origin": "self_developed",
                                             "obtained_on": "2025-10-15"}], "violations": []}
        apps.append(submit_application(db, "2026-H1", profile)[0])
    evaluate_window(db, "2026-H1")
    yield db, apps
    db.dispose()


@pytest.mark.timeout(240)
def test_store_notice_numbers_are_sequential_and_stable(store_window):
    from notices.service import NoticeService

    db, apps = store_window
    svc = NoticeService(db, settings=SETTINGS)
    first = svc.render(apps[0], "one_time", issued_on=D(2026, 9, 30))
    second = svc.render(apps[1], "one_time", issued_on=D(2026, 10, 9))
    again = svc.render(apps[0], "one_time", issued_on=D(2026, 11, 2))
    assert first.number == "资高新惠告〔2026〕第0001号" and second.number == "资高新惠告〔2026〕第0002号"
    assert again.number == first.number and again.issued_on == D(2026, 9, 30)   # re-render keeps both
    text = extract(first.html).text
    assert first.number in text and XSS_NAME in text and "2026年10月13日" in text
    assert "纳税信用级别" in text                             # a missing fact, named in Chinese


@pytest.mark.timeout(400)
def test_cli_render_window_writes_every_notice(store_window, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    db, apps = store_window
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["notice", "render-window", "2026-H1", "--out", str(out), "--pdf",
                                    "--kind", "one_time", "--issued-on", "2026-09-30", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.pdf"))
    assert len(files) == 3
    numbers = set()
    for f in files:
        txt = "".join(subprocess.run(["pdftotext", "-raw", str(f), "-"], capture_output=True, text=True).stdout.split())
        assert "一次性告知书" in txt
        numbers.update(n for n in (f"资高新惠告〔2026〕第000{i}号" for i in (1, 2, 3)) if n in txt)
    assert len(numbers) == 3
    res = CliRunner().invoke(main, ["notice", "render", apps[2], "--kind", "one_time", "--out", str(out)])
    assert res.exit_code == 0 and "资高新惠告〔2026〕第000" in res.output
