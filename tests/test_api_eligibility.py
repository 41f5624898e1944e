"""Public endpoints: the contract's eligibility and tax responses, 422s listing every problem,
and evaluation under concurrent requests."""
import asyncio
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from api.app import create_app
from api.schemas import EXAMPLE_PROFILE
from api.settings import Settings
from engine.profile import shanghai_today
from engine.yamlsource import load_yaml

# whatever rules/index.yaml lists (read as plain YAML, not through the loader the API uses)
BENEFITS = set(load_yaml(Path(__file__).resolve().parent.parent / "rules" / "index.yaml").data["benefits"])
STATUSES = {"eligible", "ineligible", "needs_info", "not_in_force"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "elig.db"
    return create_app(Settings(database_url=f"sqlite:///{db}"))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_and_rules(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    rules = client.get("/v1/rules").json()
    assert {r["id"] for r in rules} == BENEFITS
    for r in rules:
        assert r["kind"] in ("grant", "tax", "guidance") and r["unit"] in ("enterprise", "certificate")
        assert r["in_force"]["from"] and r["legal_basis"]
    one = client.get("/v1/rules/small-low-profit-cit").json()
    assert one["criteria"] and all(c["id"] and c["text"] for c in one["criteria"])
    assert client.get("/v1/rules/no-such-rule").status_code == 404


def test_eligibility_contract_shape(client):
    r = client.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31"})
    assert r.status_code == 200
    body = r.json()
    assert body["as_of"] == "2026-03-31" and body["ruleset_version"]
    assert {x["benefit_id"] for x in body["results"]} == BENEFITS
    for x in body["results"]:
        assert x["status"] in STATUSES
        assert x["criteria"], "every criterion is reported"
        for c in x["criteria"]:
            assert c["outcome"] in ("pass", "fail", "unknown") and c["legal_basis"]
        outcomes = {c["outcome"] for c in x["criteria"]}
        if x["status"] == "eligible":
            assert outcomes == {"pass"}
        if x["status"] == "ineligible":
            assert "fail" in outcomes
        if x["status"] == "needs_info":
            assert "fail" not in outcomes and "unknown" in outcomes and x["missing_facts"]
        if x["benefit_id"] == "device-registration-grant":
            assert x["subject"] == {"type": "certificate", "id": "川械注准20252170031"}
        else:
            assert x["subject"] is None


def test_same_answer_as_the_engine(client, app):
    from engine.profile import parse_profile
    ev = app.state.runtime.evaluator
    # The service's store answers the ledger question (empty ledger: never awarded).
    want = ev.evaluate(parse_profile(EXAMPLE_PROFILE, ev.registry), as_of=date(2026, 3, 31),
                       awarded=set()).model_dump(mode="json")
    got = client.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31"}).json()
    assert got == want


def test_contract_sample_certificate_is_eligible_with_reference_amount(client):
    # shared/contract/api.md's sample: a Class II domestic certificate obtained 2025-10-15,
    # checked on 2026-03-31 (2026-H1 window, coverage 2025-10-01..2026-03-31).
    sample = {"uscc": "91512000MA62XY001U", "name": "资阳示例口腔医疗器械有限公司", "in_park": True,
              "industry_code": "C3589", "tax_credit_rating": "A", "on_serious_dishonest_list": False,
              "device_registrations": [{"certificate_no": "川械注准20252170031", "product_name": "无托槽隐形矫治器",
                                        "origin": "self_developed", "obtained_on": "2025-10-15"}],
              "violations": []}
    r = client.post("/v1/eligibility", json={"profile": sample, "as_of": "2026-03-31",
                                             "benefits": ["device-registration-grant"]})
    assert r.status_code == 200
    (res,) = r.json()["results"]
    assert res["subject"] == {"type": "certificate", "id": "川械注准20252170031"}
    assert res["status"] == "eligible"
    assert res["amount_cny"] == 300000 and res["amount_provisional"] is True
    assert "参考金额" in res["amount_note"]
    assert all(c["outcome"] == "pass" for c in res["criteria"])


def test_benefit_filter_and_default_as_of(client):
    r = client.post("/v1/eligibility", json={"profile": EXAMPLE_PROFILE,
                                             "benefits": ["small-low-profit-cit"]})
    assert r.status_code == 200
    assert [x["benefit_id"] for x in r.json()["results"]] == ["small-low-profit-cit"]
    assert r.json()["as_of"] == shanghai_today().isoformat()


def test_422_lists_every_problem_at_once(client):
    profile = dict(EXAMPLE_PROFILE, uscc="91512000MA62XY0010", employees_avg="many",
                   tax_credit_rating="Z",
                   device_registrations=[{"certificate_no": "川械注准20252170031", "obtained_on": "2025-13-01"}])
    r = client.post("/v1/eligibility", json={"profile": profile, "benefits": ["no-such-benefit"]})
    assert r.status_code == 422
    paths = {e["path"] for e in r.json()["errors"]}
    assert {"profile.uscc", "profile.employees_avg", "profile.tax_credit_rating",
            "profile.device_registrations[0].obtained_on", "benefits[0]"} <= paths
    assert "no-such-benefit" in r.text


def test_tax_self_assessment(client):
    r = client.post("/v1/tax/self-assessment", json={"profile": EXAMPLE_PROFILE, "tax_year": 2025})
    assert r.status_code == 200
    body = r.json()
    assert body["tax_year"] == 2025 and body["ruleset_version"]
    assert body["items"] and all(i["kind"] == "tax" for i in body["items"])
    assert all("records_to_keep" in i and "keep_until" in i for i in body["items"])
    assert isinstance(body["conflicts"], list)
    assert client.post("/v1/tax/self-assessment", json={"profile": EXAMPLE_PROFILE}).status_code == 422


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(income=st.one_of(st.none(), st.integers(-10**7, 10**8)),
       employees=st.one_of(st.none(), st.integers(0, 1000)),
       rating=st.sampled_from([None, "A", "B", "M", "C", "D"]))
def test_status_agrees_with_criteria_for_any_profile(client, income, employees, rating):
    profile = dict(EXAMPLE_PROFILE, taxable_income_cny=income, employees_avg=employees,
                   tax_credit_rating=rating)
    r = client.post("/v1/eligibility", json={"profile": profile, "as_of": "2026-03-31"})
    assert r.status_code == 200
    for x in r.json()["results"]:
        outcomes = [c["outcome"] for c in x["criteria"]]
        if x["status"] == "not_in_force":
            continue
        expected = ("ineligible" if "fail" in outcomes else
                    "needs_info" if "unknown" in outcomes else "eligible")
        assert x["status"] == expected


@pytest.mark.timeout(120)
def test_concurrent_requests_each_get_their_own_answer(app, client):
    """50 concurrent evaluations of different profiles equal the sequential answers."""
    profiles = [dict(EXAMPLE_PROFILE, employees_avg=i * 7, taxable_income_cny=i * 150_000,
                     tax_credit_rating="ABMCD"[i % 5]) for i in range(50)]
    want = [client.post("/v1/eligibility", json={"profile": p, "as_of": "2026-03-31"}).json()
            for p in profiles]

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
            return await asyncio.gather(*[
                ac.post("/v1/eligibility", json={"profile": p, "as_of": "2026-03-31"})
                for p in profiles])

    got = asyncio.run(run())
    assert [g.json() for g in got] == want
    assert len({str(w["results"]) for w in want}) > 5  # the profiles really differ
