"""Shared fixtures and data for the store tests (imported by tests/test_store_*.py).

`db` is parametrised over SQLite (a file in tmp_path) and PostgreSQL (a fresh schema per
test on YAGU_TEST_PG_URL, dropped afterwards). Without a PostgreSQL server the PG cases skip
with the reason shown, unless YAGU_REQUIRE_POSTGRES=1 (CI), where they fail.
"""
from __future__ import annotations

import os
import random
import secrets
from datetime import date, timedelta
from urllib.parse import quote

import pytest

from engine.uscc import make_uscc

PG_URL = os.environ.get("YAGU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001
        return f"PostgreSQL 不可用（{PG_URL}）：{type(e).__name__}: {str(e).splitlines()[0]}"


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote('-csearch_path=' + schema)}"


def require_pg() -> None:
    reason = _pg_available()
    if reason:
        if os.environ.get("YAGU_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + "；YAGU_REQUIRE_POSTGRES=1 不允许跳过")
        pytest.skip(reason)


def make_store_url(kind: str, tmp_path) -> tuple[str, callable]:
    """A fresh, migrated database URL and its cleanup."""
    from store.db import Database

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'yagu.db'}"
        Database(url).upgrade()
        return url, lambda: None
    require_pg()
    import sqlalchemy as sa

    schema = "yagu_t_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = pg_schema_url(schema)
    db = Database(url)
    db.upgrade()
    db.dispose()

    def drop():
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=STORES)
def store_url(request, tmp_path):
    url, cleanup = make_store_url(request.param, tmp_path)
    yield url
    cleanup()


@pytest.fixture
def db(store_url):
    from store.db import Database

    d = Database(store_url)
    yield d
    d.dispose()


@pytest.fixture(scope="session")
def evaluator():
    from store.rulesets import current as get_evaluator

    return get_evaluator()


# --- synthetic data --------------------------------------------------------------------

H1 = dict(opens_on="2026-03-01", closes_on="2026-03-31", as_of="2026-03-31",
          coverage_from="2025-10-01", coverage_to="2026-03-31")
H2 = dict(opens_on="2026-09-01", closes_on="2026-09-30", as_of="2026-09-30",
          coverage_from="2026-04-01", coverage_to="2026-09-30")
PROVINCES = "川渝京沪苏浙粤鲁鄂湘"


def uscc_of(i: int) -> str:
    return make_uscc(f"91512000MA{i:07d}")


def cert_no(i: int, k: int = 0) -> str:
    """A unique, parseable registration number for (enterprise i, certificate k)."""
    n = i * 3 + k
    serial, rest = n % 10000, n // 10000
    idx = rest // 2
    if rest % 2:
        return f"国械注准{2025 - idx % 20}317{serial:04d}"
    return f"{PROVINCES[idx % 10]}械注准{2025 - idx // 10 % 20}217{serial:04d}"


def make_profile(i: int, seed: int = 0, *, certs: int | None = None) -> dict:
    """A valid profile with varied facts (some unknown), deterministic in (i, seed)."""
    rng = random.Random(i * 7919 + seed)

    def maybe(v, p_none=0.1):
        return None if rng.random() < p_none else v

    n_certs = certs if certs is not None else rng.choice([0, 0, 1, 1, 2])
    regs = []
    for k in range(n_certs):
        obtained = date(2025, 7, 1) + timedelta(days=rng.randrange(0, 260))
        regs.append({
            "certificate_no": cert_no(i, k),
            "product_name": f"口腔产品{i}-{k}",
            "origin": rng.choice(["self_developed", "introduced"]),
            "obtained_on": obtained.isoformat(),
            "innovative": rng.random() < 0.1,
        })
    p = {
        "uscc": uscc_of(i),
        "name": f"资阳测试企业{i}有限公司",
        "in_park": maybe(rng.random() < 0.9),
        "industry_code": "C3589",
        "established_on": "2018-06-01",
        "tax_collection": maybe("audit" if rng.random() < 0.9 else "deemed"),
        "employees_avg": maybe(rng.randrange(5, 400)),
        "total_assets_avg_cny": maybe(float(rng.randrange(1, 80)) * 1_000_000),
        "taxable_income_cny": maybe(float(rng.randrange(-10, 50)) * 100_000),
        "restricted_industry": maybe(False),
        "rd_excluded_industry": maybe(False),
        "rd_expense_cny": maybe(float(rng.randrange(0, 50)) * 100_000),
        "four_industries_sales_share": maybe(round(rng.random(), 2)),
        "vat_credit_positive_months": maybe(rng.randrange(0, 12)),
        "vat_credit_increase_cny": maybe(float(rng.randrange(0, 200)) * 10_000),
        "tax_credit_rating": maybe(rng.choice("ABMCD")),
        "immediate_refund_since_2019_04": maybe(False),
        "hnte_certificate": maybe(rng.choice([False, {"number": f"GR2024510{i:05d}", "issued_on": "2024-12-06"}])),
        "western_encouraged_share": maybe(round(rng.random(), 2)),
        "export_refund_class": maybe(rng.randrange(0, 5)),
        "on_serious_dishonest_list": maybe(rng.random() < 0.05),
        "device_registrations": regs,
        "violations": [],
        "market_cases": [],
    }
    return {k: v for k, v in p.items() if v is not None}


def profiles_csv(profiles: list[dict]) -> bytes:
    """The CSV import format (the template's headers, from the field registry) for these
    profiles: one row per list item, enum values by their Chinese labels."""
    import csv
    import io

    from store.intake import CLAIM, layout
    from store.rulesets import current as get_evaluator

    lay = layout(get_evaluator().registry)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow([c.header for c in lay.csv])

    def text(col, v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "是" if v else "否"
        return col.spec.values.get(v, v) if col.spec is not None and col.spec.type == "enum" else v

    def fact(p: dict, key: str):
        obj, _, sub = key.partition(".")
        v = p.get(obj)
        if sub:
            return v.get(sub) if isinstance(v, dict) else None
        return (v is not False) if p.get(obj) is not None and lay.registry.fields[obj].type == "object" else v

    for p in profiles:
        items = {g.list: p.get(g.list) or [] for g in lay.lists}
        for k in range(max([1, *map(len, items.values())])):
            row = []
            for c in lay.csv:
                if c.list is None:
                    row.append(text(c, fact(p, c.key)))
                    continue
                item = items[c.list][k] if k < len(items[c.list]) else None
                row.append("" if item is None or c.field == CLAIM else text(c, item.get(c.field)))
            w.writerow(row)
    return buf.getvalue().encode("utf-8-sig")


def filled_template(registry) -> bytes:
    """The .xlsx import template with its example values (from the registry) on row 2 of each
    sheet, the way a user fills it."""
    import io

    from openpyxl import load_workbook

    from store.intake import ENTERPRISE_KEY, layout, template_bytes

    lay = layout(registry)
    wb = load_workbook(io.BytesIO(template_bytes(registry)))
    for group in (lay.enterprise, *lay.lists):
        ws = wb[group.sheet]
        at = {cell.value: cell.column for cell in ws[1]}
        for c in group.columns:
            value = (registry.fields[ENTERPRISE_KEY].example if c.key == ENTERPRISE_KEY
                     else "是" if c.spec is None else c.spec.example)
            ws.cell(row=2, column=at[c.header], value=value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def decision_snapshot(db, window_id: str) -> list[tuple]:
    """Everything a decision says, without ids and timestamps, in a canonical order."""
    import json

    from sqlalchemy import select

    from store.models import Decision

    with db.read_session() as s:
        rows = s.execute(select(Decision).where(Decision.window_id == window_id)).scalars().all()
        return sorted(
            (d.uscc, d.benefit_id, d.subject_id, d.status, str(d.amount_cny),
             d.amount_provisional, d.application_id is not None, d.ruleset_version,
             d.profile_hash, json.dumps(d.trace, sort_keys=True, ensure_ascii=False))
            for d in rows
        )
