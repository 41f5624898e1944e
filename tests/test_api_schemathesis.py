"""Schemathesis against the app's own OpenAPI document (in-process ASGI, a real SQLite store with a
window, an application and tokens): no generated request, anonymous or as an administrator,
gets a 500. Bounded to a few hundred cases."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.schemas import EXAMPLE_PROFILE
from api.settings import Settings
from api_support import days
from store import applications
from store import windows as W
from store.db import Database
from store.tokens import create_token

_DIR = Path(tempfile.mkdtemp(prefix="yagu-st-"))
_URL = f"sqlite:///{_DIR / 'st.db'}"
_DB = Database(_URL)
_DB.upgrade()
_, ADMIN = create_token(_DB, "admin", "schemathesis")
W.open_window(_DB, "W1", opens_on=days(-5), closes_on=days(5), coverage_from="2025-01-01", coverage_to=days(0))
applications.submit_application(_DB, "W1", EXAMPLE_PROFILE, channel="api")
APP = create_app(Settings(database_url=_URL, migrate_on_start=False))
schema = schemathesis.from_asgi("/openapi.json", APP, force_schema_version="30")
pytestmark = [pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module", autouse=True)
def running():
    with TestClient(APP):          # the lifespan: notices, the job runner, the examples
        yield
    _DB.dispose()


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_error_anonymous(case):
    case.validate_response(case.call_asgi(), checks=(not_a_server_error,))


@schema.parametrize()
@settings(max_examples=7, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_error_as_admin(case):
    case.validate_response(case.call_asgi(headers={"Authorization": f"Bearer {ADMIN}"}),
                           checks=(not_a_server_error,))
