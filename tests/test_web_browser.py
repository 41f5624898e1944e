"""Chromium (Debian's, through Playwright) drives the self-check form and the staff console
of a real `yagu serve`; screenshots go to test-artifacts/."""
from pathlib import Path

import httpx
import pytest

from api.schemas import EXAMPLE_PROFILE
from api.testing import LiveServer

pytestmark = pytest.mark.browser
ART = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("web") / "web.db"
    with LiveServer(f"sqlite:///{db}") as srv:
        from store.db import Database
        from store.tokens import create_token
        d = Database(f"sqlite:///{db}")
        srv.admin = create_token("admin", "browser", db=d)
        h = {"Authorization": f"Bearer {srv.admin}"}
        with httpx.Client(base_url=srv.url, headers=h, timeout=30) as c:
            assert c.post("/v1/windows", json={
                "id": "2026-H1", "opens_on": "2026-01-01", "closes_on": "2026-12-31",
                "as_of": "2026-03-31", "coverage_from": "2025-07-01",
                "coverage_to": "2025-12-31"}).status_code == 201
            assert c.post("/v1/windows/2026-H1/applications",
                          json={"profile": EXAMPLE_PROFILE}).status_code == 201
        yield srv


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


@pytest.mark.timeout(180)
def test_self_check_form(server, browser):
    ART.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    external = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else external.append(r.url))
    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "惠企政策自测"
    page.fill("input[name=uscc]", EXAMPLE_PROFILE["uscc"])
    page.fill("input[name=name]", EXAMPLE_PROFILE["name"])
    page.select_option("select[name=in_park]", "true")
    page.fill("input[name=industry_code]", "C3589")
    page.select_option("select[name=tax_credit_rating]", "A")
    page.fill("input[name=reg_certificate_no]", "川械注准20252170031")
    page.fill("input[name=reg_obtained_on]", "2025-10-15")
    page.select_option("select[name=reg_origin]", "self_developed")
    page.click("button[value=add_reg]")  # a second certificate row, server-side
    assert page.locator("#reg-rows tbody tr").count() == 2
    page.locator("input[name=reg_certificate_no]").nth(1).fill("川械注准20252170032")
    page.fill("input[name=as_of]", "2026-03-31")
    page.click("#submit-check")
    page.wait_for_selector("article.result")
    grant = page.locator("article[data-benefit=device-registration-grant]")
    assert grant.count() == 2
    text = page.locator("main").inner_text()
    assert "✓" in text and "?" in text
    assert "资阳" in text  # legal basis shown
    page.screenshot(path=str(ART / "self-check-results.png"), full_page=True)

    page.goto(server.url + "/")
    page.fill("input[name=uscc]", "123")
    page.click("#submit-check")
    errors = page.locator("#form-errors").inner_text()
    assert "统一社会信用代码" in errors and "企业名称" in errors
    page.screenshot(path=str(ART / "self-check-errors.png"), full_page=True)
    assert not external, external
    page.close()


@pytest.mark.timeout(180)
def test_staff_console(server, browser):
    ART.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(server.url + "/staff")
    assert "/staff/login" in page.url
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "令牌无效" in page.locator(".alert").inner_text()
    page.fill("input[name=token]", server.admin)
    page.click("button[type=submit]")
    page.click("text=2026-H1")
    page.click("#btn-evaluate")
    assert "批量判定已完成" in page.locator(".notice-ok").inner_text()
    counts = page.locator("#status-counts").inner_text()
    assert "符合条件" in counts
    cookie = [c for c in ctx.cookies() if c["name"] == "yagu_session"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=str(ART / "staff-window.png"), full_page=True)
    page.click("#btn-close")
    assert "批次已关闭" in page.locator(".notice-ok").inner_text()
    with page.expect_download() as dl:
        page.click("#dl-awards")
    assert dl.value.suggested_filename.endswith(".xlsx")
    page.screenshot(path=str(ART / "staff-window-closed.png"), full_page=True)
    ctx.close()


def test_console_forms_refuse_a_missing_csrf_token(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        c.cookies.set("yagu_session", server.admin)
        r = c.post("/staff/windows/2026-H1/evaluate", data={})
        assert r.status_code == 403
