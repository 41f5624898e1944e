"""Public endpoints over the real engine: the answers equal the reference semantics, every numeric
field's domain holds in every spelling JSON allows (issue 9 item 1: `1e-05`, `2e+16`, `1e308`…),
the same 422 on every endpoint, unknown keys named with the closest known one, NUL, dates and
huge integers refused alike everywhere, and a crash of the rule engine's process answered as one
clean 500 while the service goes on."""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import pkgutil
import re
import signal
from datetime import date
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.exc import OperationalError

import store
from api.errors import ENGINE_FAILED, domain_response
from api.schemas import DATE_RANGE, EXAMPLE_AS_OF, EXAMPLE_PROFILE, EXAMPLE_REQUEST, NUL_MESSAGE
from api_support import Api, accepting_window, api_on, assert_error, chinese, wait_job
from engine import UnknownBenefit, adapter
from engine.profile import Problem, ProfileError
from engine.vocabulary import STATUS, cn_date
from store.applications import ImportRejected, ImportReport
from store.errors import Conflict, NotFound, RowProblem, StoreError, ValidationFailed
from store_fixtures import profiles_csv, uscc_of

pytestmark = pytest.mark.timeout(300)
AS_OF = EXAMPLE_AS_OF.isoformat()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_on("sqlite", tmp_path_factory.mktemp("public")) as a:
        accepting_window(a, "W1")
        yield a


def numeric_fields(registry) -> list:
    return [s for s in registry.entered_fields() if s.type in ("int", "number")]


def string_fields(registry) -> list[tuple[str, object]]:
    """(profile path, spec) of every text field, in objects and list items too."""
    out = []
    for s in registry.entered_fields():
        if s.type == "string":
            out.append((s.id, s))
        elif s.type in ("object", "list"):
            for f in s.fields:
                if f.type == "string" and f.entered:
                    out.append((f"{s.id}.{f.id}" if s.type == "object" else f"{s.id}[0].{f.id}", f))
    return out


def with_value(path: str, value) -> dict:
    """EXAMPLE_PROFILE with one fact set (`a`, `a.b` in an object, `a[0].b` in a list item)."""
    p = json.loads(json.dumps(EXAMPLE_PROFILE))
    m = re.match(r"^(\w+)(\[0\])?(?:\.(\w+))?$", path)
    head, item, field = m.groups()
    if item:
        base = p.get(head) or [{"violations": {"description": "违规"}, "market_cases": {"case_id": "自查-1"}}.get(head, {})]
        p[head] = [{**base[0], field: value}] if base else [{field: value}]
    elif field:
        p[head] = {**(p.get(head) or {}), field: value}
    else:
        p[head] = value
    return p


def reference(interp_eval, profile: dict, as_of: date = EXAMPLE_AS_OF, **kw) -> list:
    """The reference semantics' results (the plain-Python interpreter, empty award ledger), with
    what would change each verdict, as the API answers."""
    resp = interp_eval.evaluate(profile, as_of, awarded=set(), **kw)
    return interp_eval.with_suggestions(profile, resp, awarded=set()).model_dump(mode="json")["results"]


# --- answers --------------------------------------------------------------------------------------
def test_health_and_rules(api: Api, book):
    h = api.c.get("/healthz")
    assert h.status_code == 200 and h.json()["database"] == "ok"
    assert h.json()["ruleset_version"] == api.app.state.runtime.evaluator.ruleset_version
    rules = api.c.get("/v1/rules").json()
    assert [r["id"] for r in rules] == list(book.benefits)
    for r in rules:
        assert r["kind"] in ("grant", "tax", "guidance") and r["in_force"]["from"] and r["legal_basis"]
    one = api.c.get(f"/v1/rules/{rules[0]['id']}").json()
    assert one["criteria"] and all(c["id"] and c["text"] for c in one["criteria"])
    assert assert_error(api.c.get("/v1/rules/no-such-rule"), 404)["detail"].endswith("no-such-rule")


def test_eligibility_is_the_reference_semantics(api: Api, interp_eval):
    r = api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST)
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == AS_OF
    assert r.json()["results"] == reference(interp_eval, EXAMPLE_PROFILE)
    grant = next(x for x in r.json()["results"] if x["benefit_id"] == "device-registration-grant")
    assert grant["status"] == "eligible" and grant["amount_cny"] == 300000


def test_tax_self_assessment(api: Api, interp_eval):
    r = api.c.post("/v1/tax/self-assessment", json={"profile": EXAMPLE_PROFILE, "tax_year": 2025})
    assert r.status_code == 200, r.text
    assert r.json() == interp_eval.tax_self_assessment(EXAMPLE_PROFILE, 2025).model_dump(mode="json") | {
        "ruleset_version": r.json()["ruleset_version"]}
    assert all(i["records_to_keep"] and i["kind"] == "tax" for i in r.json()["items"])
    body = assert_error(api.c.post("/v1/tax/self-assessment", json={"profile": EXAMPLE_PROFILE}), 422)
    assert [e["path"] for e in body["errors"]] == ["tax_year"]


def test_openapi_examples_are_what_the_api_answers(api: Api):
    """The documented examples are the engine's output for the documented requests: if either
    drifts (rules, engine, request example), this fails."""
    spec = api.c.get("/openapi.json").json()

    def example(path: str, method: str) -> dict:
        return spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["example"]

    req = spec["components"]["schemas"]["EligibilityRequest"]["examples"][0]
    assert req["profile"] == EXAMPLE_REQUEST["profile"] and req["as_of"] == EXAMPLE_REQUEST["as_of"]
    assert api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST).json() == example("/v1/eligibility", "post")
    tax_req = spec["components"]["schemas"]["TaxSelfAssessmentRequest"]["examples"][0]
    assert api.c.post("/v1/tax/self-assessment", json=tax_req).json() == example("/v1/tax/self-assessment", "post")
    rule = example("/v1/rules/{rule_id}", "get")
    assert api.c.get(f"/v1/rules/{rule['id']}").json() == rule


def test_concurrent_requests_each_get_their_own_answer(api: Api, interp_eval):
    """Twenty different profiles at once through the service (one engine process, one lock):
    each answer is that profile's reference answer."""
    profiles = [{**EXAMPLE_PROFILE, "employees_avg": i * 17, "taxable_income_cny": i * 150_000,
                 "tax_credit_rating": "ABMCD"[i % 5]} for i in range(20)]

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://t") as ac:
            return await asyncio.gather(*[ac.post("/v1/eligibility", json={"profile": p, "as_of": AS_OF})
                                          for p in profiles])

    answers = asyncio.run(run())
    assert [a.json()["results"] for a in answers] == [reference(interp_eval, p) for p in profiles]
    assert len({str(a.json()["results"]) for a in answers}) > 5      # the profiles really differ


# --- numbers (issue 9 item 1) -------------------------------------------------------------------------
SPELLINGS = ["1e-05", "2e+16", "1e308", "1e16", "0.0000001", "1.5e16", "0.0001", "1E2", "-0.0", "7", "0.5",
             "12345.67", "-3", "1e-7", "20000000000000000"]


def in_domain(spec, token: str) -> bool:
    """Whether a JSON number token is a value of the field: an oracle written from the field
    registry's declaration (bounds, decimals; whole numbers spelled as integers)."""
    d = Decimal(token)
    if not spec.min <= d <= spec.max:
        return False
    if spec.type == "int" or spec.decimals == 0:
        return re.fullmatch(r"-?\d+", token) is not None
    return -d.as_tuple().exponent <= spec.decimals if d.as_tuple().exponent < 0 else True


def test_every_numeric_field_in_every_spelling(api: Api, registry, interp_eval):
    """Each spelling of each numeric field: inside the field's domain the verdicts equal the
    reference semantics (no crash of the engine), outside it one 422 naming the field."""
    accepted = refused = 0
    for spec in numeric_fields(registry):
        for token in SPELLINGS:
            profile = with_value(spec.id, "@")
            raw = json.dumps({**EXAMPLE_REQUEST, "profile": profile}).replace('"@"', token)
            r = api.c.post("/v1/eligibility", content=raw, headers={"content-type": "application/json"})
            if in_domain(spec, token):
                assert r.status_code == 200, (spec.id, token, r.text[:300])
                assert r.json()["results"] == reference(interp_eval, json.loads(raw)["profile"]), (spec.id, token)
                accepted += 1
            else:
                body = assert_error(r, 422)
                assert [e["path"] for e in body["errors"]] == [f"profile.{spec.id}"], (spec.id, token, body)
                refused += 1
    assert accepted > 20 and refused > 20


def test_out_of_domain_numbers_get_the_same_422_on_every_endpoint(api: Api, registry):
    """The eligibility check, the tax self-assessment, an application, an import file and the
    self-check form refuse a value outside a field's domain with the same words."""
    said: dict[str, str] = {}
    for spec in numeric_fields(registry):
        bad = spec.max * 10 + 1
        profile = with_value(spec.id, bad)
        answers = [
            api.c.post("/v1/eligibility", json={"profile": profile}),
            api.c.post("/v1/tax/self-assessment", json={"profile": profile, "tax_year": 2025}),
            api.c.post("/v1/windows/W1/applications", json={"profile": profile}, headers=api.staff),
        ]
        errors = [assert_error(r, 422)["errors"] for r in answers]
        assert errors[0] == [{"path": f"profile.{spec.id}", "message": errors[0][0]["message"], "label": spec.label}]
        assert all([(e["path"], e["message"]) for e in es] == [(e["path"], e["message"]) for e in errors[0]]
                   for es in errors), (spec.id, errors)
        form = {"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", spec.id: str(bad)}
        page = api.c.post("/self-check", data=form)
        assert page.status_code == 422 and errors[0][0]["message"] in page.text, spec.id
        said[spec.label] = errors[0][0]["message"]
    # the same values in an import file: one row per field, each problem in the same words
    rows = [{**with_value(spec.id, spec.max * 10 + 1), "uscc": uscc_of(900 + i), "device_registrations": []}
            for i, spec in enumerate(numeric_fields(registry))]
    job = wait_job(api, api.c.post("/v1/windows/W1/applications/import", headers=api.staff,
                                   files={"file": ("界外.csv", profiles_csv(rows), "text/csv")}))
    problems = job["result"]["problems"]
    assert job["result"]["committed"] is False and len(problems) == len(said), problems
    for p in problems:      # row 2 holds the first field's value, row 3 the second's…
        spec = numeric_fields(registry)[p["row"] - 2]
        assert p["message"] == said[spec.label] and p["column"], (p, said[spec.label])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_numbers_of_every_numeric_field_through_the_api(api: Api, registry, interp_eval, data):
    """Hypothesis: random finite numbers in every numeric field at once, through the HTTP path
    and the engine's process; the verdicts are the reference semantics'."""
    profile = json.loads(json.dumps(EXAMPLE_PROFILE))
    for spec in numeric_fields(registry):
        places = 0 if spec.type == "int" else spec.decimals
        value = data.draw(st.one_of(st.none(), st.decimals(spec.min, spec.max, places=places, allow_nan=False,
                                                            allow_infinity=False)), label=spec.id)
        if value is not None:
            profile[spec.id] = int(value) if places == 0 or value == value.to_integral_value() else float(value)
    r = api.c.post("/v1/eligibility", json={"profile": profile, "as_of": AS_OF})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["results"] == reference(interp_eval, profile)


def test_exponent_spellings_through_the_self_check_form(api: Api, interp_eval):
    """The public form reads 0.00001 and 1e-05 alike (the JSON form of 0.00001 is 1e-05, which
    once killed the engine) and shows the reference semantics' verdicts."""
    for raw in ("0.00001", "1e-05", "0.000001"):
        form = {"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", "in_park": "yes",
                "western_encouraged_share": raw, "four_industries_sales_share": raw, "as_of": AS_OF}
        page = api.c.post("/self-check", data=form)
        assert page.status_code == 200, (raw, page.text[:500])
        shown = json.loads(re.search(r'name="profile_json" value="([^"]*)"', page.text).group(1)
                           .replace("&#34;", '"').replace("&quot;", '"'))
        assert shown["western_encouraged_share"] == float(raw)
        want: dict[str, int] = {}
        for x in reference(interp_eval, shown):
            want[x["status"]] = want.get(x["status"], 0) + 1
        summary = re.sub(r"<[^>]+>", "", re.search(r'<p class="summary"[^>]*>(.*?)</p>', page.text, re.S).group(1))
        for status, n in want.items():
            assert f"{STATUS[status]} {n} 项" in summary, (raw, summary)
    for raw in ("2e+16", "1e308"):
        form = {"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", "rd_expense_cny": raw}
        page = api.c.post("/self-check", data=form)
        assert page.status_code == 422 and "不能大于" in page.text


def test_a_thousand_digit_amount_gets_a_plain_message(api: Api):
    """Issue 9 item 21: 10^1000 once got “必须是数字，不能是数字”."""
    for token, words in (("1" + "0" * 1000, "不能大于 10万亿元"), ("-1" + "0" * 1000, "不能小于 0元"),
                         ("1e1000", "必须是有限的数字")):
        raw = json.dumps({"profile": with_value("rd_expense_cny", "@")}).replace('"@"', token)
        r = api.c.post("/v1/eligibility", content=raw, headers={"content-type": "application/json"})
        (err,) = assert_error(r, 422)["errors"]
        assert err == {"path": "profile.rd_expense_cny", "message": words, "label": "当年研发费用"}
    r = api.c.post("/v1/eligibility", content=b'{"profile": {"rd_expense_cny": 1' + b"0" * 5000 + b"}}",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "数字过长" in assert_error(r, 400)["detail"]
    page = api.c.post("/self-check", data={"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业",
                                           "rd_expense_cny": "1" + "0" * 1000})
    assert page.status_code == 422 and "不能大于 10万亿元" in page.text and "不能是数字" not in page.text


# --- strings, keys, NUL, dates, integers ----------------------------------------------------------------
def test_every_text_field_is_bounded(api: Api, registry):
    """Issue 9 item 4: a text one character over its column's length is refused, naming the field."""
    for path, spec in string_fields(registry):
        over = with_value(path, "企" * (spec.max_length + 1))
        body = assert_error(api.c.post("/v1/eligibility", json={"profile": over}), 422)
        assert (f"profile.{path}", f"不能超过 {spec.max_length} 个字符") in [(e["path"], e["message"])
                                                                        for e in body["errors"]], path
        if spec.format is None:
            at = with_value(path, "企" * spec.max_length)
            r = api.c.post("/v1/eligibility", json={"profile": at, "as_of": AS_OF})
            assert r.status_code == 200, (path, r.text[:300])


def test_unknown_keys_are_named_with_the_closest_known_key(api: Api):
    cases = [({**EXAMPLE_PROFILE, "in_prak": True}, "profile.in_prak", "“in_park”"),
             (with_value("device_registrations[0].orign", "self_developed"),
              "profile.device_registrations[0].orign", "“origin”"),
             ({**EXAMPLE_PROFILE, "zzzz_qqqq": 1}, "profile.zzzz_qqqq", None)]
    for profile, path, hint in cases:
        for r in (api.c.post("/v1/eligibility", json={"profile": profile}),
                  api.c.post("/v1/tax/self-assessment", json={"profile": profile, "tax_year": 2025}),
                  api.c.post("/v1/windows/W1/applications", json={"profile": profile}, headers=api.staff)):
            (err,) = assert_error(r, 422)["errors"]
            assert err["path"] == path
            assert (hint in err["message"]) if hint else "是否指" not in err["message"], err
    body = assert_error(api.c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "benefits": ["nope"]}), 422)
    assert "nope" in body["detail"]


def test_nul_in_strings_is_refused_and_in_path_ids_not_found(api: Api):
    """Issue 9 item 8 on SQLite (tests/test_api_cases.py runs the store's side on PostgreSQL)."""
    body = assert_error(api.c.post("/v1/eligibility", json={"profile": {**EXAMPLE_PROFILE, "name": "资阳\x00企业"}}), 422)
    assert body["errors"] == [{"path": "profile.name", "message": NUL_MESSAGE, "label": "企业名称"}]
    body = assert_error(api.c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "benefits": ["a\x00"]}), 422)
    assert body["errors"] == [{"path": "benefits[0]", "message": NUL_MESSAGE, "label": "事项"}]
    for path in ("/v1/rules/%00", "/v1/applications/%00?access_code=X", "/v1/applications/A%00B?access_code=X"):
        assert_error(api.c.get(path), 404)
    body = assert_error(api.c.get("/v1/applications/A1", params={"access_code": "AB\x00"}), 422)
    assert body["errors"] == [{"path": "access_code", "message": NUL_MESSAGE, "label": "查询码"}]


DATE_CASES = [("0001-01-01", DATE_RANGE), ("9999-12-31", DATE_RANGE), ("1999-12-31", DATE_RANGE),
              ("2101-01-01", DATE_RANGE), ("2026-03-31T00:00:00", "不能带时间"), ("2026-03-31 10:00", "不能带时间"),
              ("2026-03-31T10:00:00+08:00", "不能带时间"), ("20260331", "年-月-日"), ("2026-02-30", "不是有效的日期"),
              (20260331, "年-月-日")]


@pytest.mark.parametrize("value,words", DATE_CASES)
def test_dates_are_refused_alike_everywhere(api: Api, value, words):
    """Issue 9 items 9 and 21: year 1 and 9999 once gave 500s, a time part was accepted."""
    answers = {
        "as_of": api.c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "as_of": value}),
        "opens_on": api.c.post("/v1/windows", json={"id": "WD", "opens_on": value, "closes_on": "2026-12-31",
                                                    "coverage_from": "2026-01-01", "coverage_to": "2026-06-30"},
                               headers=api.staff),
        "as_of ": api.c.post("/v1/windows/W1/impact", json={"as_of": value}, headers=api.staff),
    }
    messages = set()
    for field, r in answers.items():
        (err,) = assert_error(r, 422)["errors"]
        assert err["path"] == field.strip() and words in err["message"], (field, err)
        messages.add(err["message"])
    assert len(messages) == 1, messages
    page = api.c.post("/self-check", data={"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", "as_of": str(value)})
    assert page.status_code == 422 and "判定日期" in page.text


def test_a_request_wrong_around_its_profile_lists_the_profile_s_problems_too(api: Api):
    """An eligibility request with a bad date, an unknown key and a wrong profile: one answer
    lists all of them (it once listed the three around the profile and none inside it)."""
    from api.schemas import EXAMPLE_PROFILE

    profile = {**EXAMPLE_PROFILE, "uscc": "91512000MA00000000", "employees_avg": -5}
    body = assert_error(api.c.post("/v1/eligibility", json={"profile": profile, "as_of": "2026/01/01",
                                                              "nope": 1}), 422)
    paths = {e["path"] for e in body["errors"]}
    assert {"as_of", "nope", "profile.uscc", "profile.employees_avg"} <= paths, body
    assert body["detail"] == f"提交的数据有误，共 {len(body['errors'])} 处问题"
    # a benefit there is not, named with the rest: with a bad date, and with a wrong profile alone
    for extra in ({"as_of": "2026-02-30"}, {}):
        body = assert_error(api.c.post("/v1/eligibility", json={"profile": profile, "benefits": ["nope"], **extra}),
                            422)
        said = {e["path"]: e["message"] for e in body["errors"]}
        assert said["benefits"].startswith("没有事项编号“nope”") and "profile.uscc" in said, body
        assert ("as_of" in said) == bool(extra) and " id" not in said["benefits"]


def test_a_window_s_problems_are_listed_at_once(api: Api):
    """A bad id, dates in the wrong order, a bad number of working days and an unknown amount
    key: one answer (it once said the id and the working days, then the rest one by one)."""
    body = assert_error(api.c.post("/v1/windows", headers=api.staff, json={
        "id": "bad id!", "opens_on": "2026-12-05", "closes_on": "2026-12-01", "correction_workdays": 0,
        "amounts": {"nope": 1}}), 422)
    assert {"id", "closes_on", "correction_workdays", "amounts.nope"} <= {e["path"] for e in body["errors"]}, body


def test_integers_beyond_64_bits_are_refused_alike_everywhere(api: Api):
    """Issue 9 item 9: 2^64 once gave 200 on one endpoint and 500 on another."""
    huge = 2 ** 64
    answers = [
        (api.c.post("/v1/eligibility", json={"profile": {**EXAMPLE_PROFILE, "employees_avg": huge}}),
         "profile.employees_avg", "不能大于 10,000,000人"),
        (api.c.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "tax_year": huge}), "tax_year", "不能大于 2100"),
        (api.c.post("/v1/tax/self-assessment", json={"profile": EXAMPLE_PROFILE, "tax_year": huge}),
         "tax_year", "不能大于 2100"),
        (api.c.post("/v1/windows", json={"id": "WX", "correction_workdays": huge}, headers=api.staff),
         "correction_workdays", "应为 1 至 60 之间的工作日数"),
        (api.c.get("/v1/windows/W1/applications", params={"offset": huge}, headers=api.staff),
         "offset", "不能大于 2147483647"),
        (api.c.get(f"/v1/applications/A1/materials/{huge}", headers=api.staff), "material_pk", "不能大于 2147483647"),
        (api.c.delete(f"/v1/tokens/{huge}", headers=api.admin), "token_id", "不能大于 2147483647"),
        (api.c.post("/v1/applications/A1/reviews", headers=api.staff,
                    json={"benefit_id": "x", "action": "confirm", "revision": huge}), "revision", "不能大于 2147483647"),
    ]
    for r, path, message in answers:
        assert (path, message) in [(e["path"], e["message"]) for e in assert_error(r, 422)["errors"]], (path, r.text)


# --- the engine's process and the error mapping ------------------------------------------------------
def test_engine_crash_is_one_clean_500_and_the_service_goes_on(api: Api, monkeypatch):
    """Issue 9 item 1: the rule engine's process dies. Killed once during a call, the call is
    tried again in a fresh process; a call that kills it every time (as an input that crashes
    the C engine would) gets a 500 in Chinese; the next requests are answered."""
    real_call = adapter._Host.call
    killed: list[int] = []
    kill_every_call = [False]

    def killing_call(self, msg):
        if msg[0] == "run" and (kill_every_call[0] or not killed):
            killed.append(self.proc.pid)
            os.kill(self.proc.pid, signal.SIGKILL)      # SIGKILL during the call, before it is read
            self.proc.wait()
        return real_call(self, msg)

    monkeypatch.setattr(adapter._Host, "call", killing_call)
    r = api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST)
    assert r.status_code == 200 and len(killed) == 1 and adapter.engine_pid() not in (None, killed[0])
    kill_every_call[0] = True
    assert assert_error(api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST), 500)["detail"] == ENGINE_FAILED
    assert len(killed) == 3
    kill_every_call[0] = False
    ok = api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST)
    assert ok.status_code == 200 and ok.json() == r.json() and adapter.engine_pid() not in killed

    def crashed(self, facts):
        raise adapter.EngineCrashed("durable_rules 引擎进程异常退出（退出码 -11）")

    with monkeypatch.context() as m:
        m.setattr(adapter.CompiledRuleset, "run", crashed)
        assert assert_error(api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST), 500)["detail"] == ENGINE_FAILED
        page = api.c.post("/self-check", data={"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业"})
        assert page.status_code == 500 and "text/html" in page.headers["content-type"]
        assert "规则引擎未能判定" in page.text and "Traceback" not in page.text
    assert api.c.post("/v1/eligibility", json=EXAMPLE_REQUEST).status_code == 200
    assert api.c.post("/self-check", data={"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业"}).status_code == 200


def _store_error_classes() -> set[type]:
    for m in pkgutil.iter_modules(store.__path__):
        importlib.import_module(f"store.{m.name}")
    out, todo = set(), [StoreError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            out.add(sub)
            todo.append(sub)
    return out


def test_domain_exceptions_are_mapped_by_type():
    """Issue 10 item 6: each of the store's exception types (found by walking the store) and
    the engine's map to their own status with their own message."""
    samples = {NotFound: (NotFound("申报 A1 不存在"), 404), Conflict: (Conflict("申报批次 W1 已关闭"), 409),
               ValidationFailed: (ValidationFailed([RowProblem("不能为空", path="label")]), 422),
               ImportRejected: (ImportRejected(ImportReport("a.csv", "W1", 1, 1, problems=[
                   RowProblem("统一社会信用代码无效", sheet="CSV", row=2)])), 422)}
    assert _store_error_classes() == set(samples), "a new store exception needs its status here and in api.errors"
    for cls, (exc, status) in samples.items():
        r = domain_response(exc)
        assert r.status_code == status and json.loads(r.body)["detail"]
        assert exc.message in json.loads(r.body)["detail"] or status == 422
    assert json.loads(domain_response(samples[ImportRejected][0]).body)["report"]["filename"] == "a.csv"
    others = [(ProfileError([Problem("uscc", "统一社会信用代码校验码错误")]), 422),
              (UnknownBenefit(["x"], ["a"]), 422), (adapter.EngineCrashed("x"), 500), (adapter.EngineError("x"), 500),
              (OperationalError("BEGIN", {}, Exception("attempt to write a readonly database")), 503)]
    for exc, status in others:
        r = domain_response(exc)
        assert r.status_code == status and chinese(json.loads(r.body)["detail"])
    assert "数据库文件只读" in json.loads(domain_response(others[-1][0]).body)["detail"]


def test_a_certificate_row_is_removed_from_the_self_check_form_and_the_rest_kept(api: Api):
    """删除此项 on the second of three rows: the page comes back with the first and the third,
    renumbered, everything else as typed; nothing is judged yet."""
    certs = ["川械注准20252170001", "川械注准20252170002", "川械注准20252170003"]
    form = {"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", "device_registrations.known": "yes",
            "device_registrations.certificate_no": certs, "device_registrations.origin": ["self_developed"] * 3}
    row = re.compile(r'id="f-device_registrations-(\d+)-certificate_no"[^>]*value="([^"]*)"')
    page = api.c.post("/self-check", data={**form, "action": "remove:device_registrations:1"})
    assert page.status_code == 200 and 'id="summary"' not in page.text
    assert row.findall(page.text) == [("0", certs[0]), ("1", certs[2])], row.findall(page.text)
    assert 'value="资阳测试企业"' in page.text and 'id="remove-device_registrations-1"' in page.text
    # the only row removed: one blank row stays to fill in
    one = {**form, "device_registrations.certificate_no": certs[:1], "device_registrations.origin": ["self_developed"]}
    page = api.c.post("/self-check", data={**one, "action": "remove:device_registrations:0"})
    assert page.text.count('id="f-device_registrations-0-certificate_no"') == 1
    assert certs[0] not in page.text and 'id="f-device_registrations-1-certificate_no"' not in page.text
    # an action naming no list or no row is harmless: the form comes back as sent
    for action in ("remove:no_such_list:0", "remove:device_registrations:x", "remove:device_registrations:9"):
        page = api.c.post("/self-check", data={**form, "action": action})
        assert page.status_code == 200 and [c for _, c in row.findall(page.text)] == certs, action


def test_the_self_check_judges_a_certificate_in_the_window_staff_opened_for_it(api: Api):
    """A window staff opened (W1 here: accepting now, covering certificates from 2025-01-01)
    is the one a self-check names for a certificate of its coverage, with its real dates,
    not the default calendar's window of that half-year."""
    w1 = api.c.get("/v1/windows/W1", headers=api.staff).json()
    form = {"uscc": EXAMPLE_PROFILE["uscc"], "name": "资阳测试企业", "in_park": "yes", "device_registrations.known": "yes",
            "device_registrations.certificate_no": ["川械注准20252170001"],
            "device_registrations.origin": ["self_developed"], "device_registrations.obtained_on": ["2025-06-01"]}
    page = api.c.post("/self-check", data={**form, "action": "check"})
    assert page.status_code == 200 and 'id="summary"' in page.text
    grant = page.text[page.text.index('data-benefit="device-registration-grant"'):]
    line = re.search(r'<p class="meta window-line">(.*?)</p>', grant, re.S).group(1)
    opens, closes = (date.fromisoformat(w1[k]) for k in ("opens_on", "closes_on"))
    assert line.startswith(w1["label"] + "：") and "正在受理" in line, line
    assert cn_date(opens) in line and cn_date(closes) in line, line
