"""The API's documentation is generated from the app and stays true (issue 10 items 6 and 9): the
committed docs/api.md is what scripts/gen_docs.py makes of the app now, every endpoint has a
Chinese summary and description (/docs), every route declares what it answers, and nothing cites
a file outside the repository."""
from __future__ import annotations

import importlib.util
import re

import pytest
from api import routes_public, routes_staff
from api.testing import REPO
from api_support import chinese

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def generated(gen_docs) -> str:
    return gen_docs.api_markdown()


@pytest.fixture(scope="module")
def openapi(gen_docs) -> dict:
    return gen_docs._app().openapi()


def test_committed_api_reference_is_what_the_app_generates(generated):
    committed = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    assert committed == generated, "docs/api.md 与服务不一致：请运行 python scripts/gen_docs.py api"


def test_the_reference_lists_every_endpoint_and_every_profile_field(generated, openapi, registry):
    for path, item in openapi["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in generated, (method, path)
    for spec in registry.entered_fields():
        assert f"| `{spec.id}` | {spec.label}" in generated, spec.id


def test_every_endpoint_has_a_chinese_summary_and_description(openapi):
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            assert chinese(op.get("summary", "")) and chinese(op.get("description", "")), (method, path)
            for code, resp in op["responses"].items():
                assert chinese(resp["description"]), (method, path, code)
            for p in op.get("parameters", []):
                assert chinese(p.get("description", "")), (method, path, p["name"])


def test_every_route_declares_what_it_answers():
    """Issue 10 item 6: a JSON route has its response_model; a file route names its media
    types; a route without a body answers 204."""
    for route in routes_public.router.routes + routes_staff.router.routes:
        files = set(route.responses.get(200, {}).get("content", {})) - {"application/json"}
        assert route.status_code == 204 or route.response_model is not None or files, \
            f"{route.methods} {route.path} declares nothing"
        assert not (route.response_model is not None and files), route.path


CITED = re.compile(r"(?<![\w/.])((?:\.\./|docs/|rules/|shared/|scripts/|tests/)[\w./-]*\w)")


def test_nothing_cites_a_file_outside_the_repository(generated, openapi):
    text = generated + str(openapi)
    cited = set(CITED.findall(text))
    assert cited, "the reference names its sources"
    for path in cited:
        assert not path.startswith(("../", "shared/")), path
        assert (REPO / path).exists(), f"{path} is cited but not in the repository"


def test_the_reference_says_which_routes_need_an_admin(generated):
    """The role the reference names is the one the route enforces (PUT …/amounts was listed
    for staff, who got 403)."""
    from api.security import require_admin

    for route in routes_staff.router.routes:
        admin = any(d.call is require_admin for d in route.dependant.dependencies)
        for method in route.methods:
            line = next(x for x in generated.splitlines() if x.startswith(f"| {method} | `{route.path}` |"))
            assert line.endswith("| 管理员令牌 |") == admin, line


def test_model_names_and_descriptions_read_as_a_reference(openapi):
    """No framework-made name (Body_submit_correction_v1_…, engine__results__Conflict) and no
    English docstring — the code's comments — reaches the reference."""
    for name, model in openapi["components"]["schemas"].items():
        assert "__" not in name and not name.startswith("Body_"), name
        assert not model.get("description") or re.search(r"[\u4e00-\u9fff]", model["description"]), (name, model)
