"""Schemathesis against the app's own OpenAPI schema (in-process ASGI): no generated input,
authenticated or not, gets a 500."""
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api import domain
from api.app import create_app
from api.settings import Settings
from store.tokens import create_token

_DB = Path(tempfile.mkdtemp(prefix="yagu-st-")) / "st.db"
APP = create_app(Settings(database_url=f"sqlite:///{_DB}"))
_RT = APP.state.runtime
domain.migrate(_RT)
ADMIN = create_token("admin", "schemathesis", db=_RT.store)
domain.open_window(_RT, {"id": "2026-H1", "opens_on": "2026-01-01", "closes_on": "2026-12-31",
                         "as_of": "2026-03-31", "coverage_from": "2025-07-01",
                         "coverage_to": "2025-12-31"}, "test")

schema = schemathesis.from_asgi("/openapi.json", APP, force_schema_version="30")


def test_docs_have_chinese_descriptions_and_examples():
    spec = APP.openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert any("\u4e00" <= ch <= "\u9fff" for ch in op.get("summary", "")), (method, path)
            ok = op["responses"].get("200") or op["responses"].get("201") or {}
            content = ok.get("content", {})
            json_ok = content.get("application/json")
            if json_ok is not None:
                assert "example" in json_ok or "examples" in json_ok, (method, path)
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                ref = body["schema"]["$ref"].split("/")[-1]
                assert spec["components"]["schemas"][ref].get("examples"), (method, path)


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_anonymous(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error,))


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_as_admin(case):
    response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
    case.validate_response(response, checks=(not_a_server_error,))
