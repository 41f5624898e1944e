"""Shared fixtures and data for the store tests (imported by tests/test_store_*.py).

`db` is parametrised over SQLite (a file in tmp_path) and PostgreSQL (a fresh schema per
test on YAGU_TEST_PG_URL, dropped afterwards). Without a PostgreSQL server the PG cases skip
with the reason shown, unless YAGU_REQUIRE_POSTGRES=1 (CI), where they fail.

Also: synthetic profiles (`make_profile` varied, `grant_profile` with every grant fact known),
the case process's steps and checks (`submit_all`, `assert_history_complete`, `ledger`), rule
directories changed on a copy (`rules_copy`, `evaluator_of`, `rules_in_force`), processes to
kill (`spawn`, `sigkill`) and a simulated database outage (`Outage`).
"""
from __future__ import annotations

import os
import random
import secrets
from datetime import date, timedelta
from pathlib import Path
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


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def proofs(db, application_id: str, *, leave: tuple[str, ...] = ()) -> list[tuple]:
    """A small PDF for every material the application's 补正 asks (but those in `leave`,
    material ids): the proof the one-time notice asks for with the facts it asks."""
    from store import cases

    ask = cases.detail(db, application_id).correction
    return [(m["benefit_id"], m["subject_id"], m["material_id"], f"{m['material_id']}.pdf", PDF)
            for m in (ask.materials if ask else []) if m["material_id"] not in leave]


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


# --- the case process, at store level ----------------------------------------------------------
REPO = Path(__file__).resolve().parent.parent
IN_H1 = date(2026, 3, 10)       # inside H1's acceptance period
AFTER_H1 = date(2026, 4, 1)     # a working day after it
ELIGIBLE_ON = "2026-01-15"      # inside H1's coverage period


def grant_profile(i: int, *, origin: str | None = "self_developed", in_park: bool = True,
                  certs: int = 1, obtained_on: str = ELIGIBLE_ON, **facts) -> dict:
    """A profile whose grant facts are all known (eligible for every certificate, given the
    ledger) unless overridden; `origin=None` leaves the certificates' origin unknown."""
    regs = []
    for k in range(certs):
        r = {"certificate_no": cert_no(i, k), "product_name": f"口腔产品{i}-{k}", "obtained_on": obtained_on,
             "innovative": False}
        if origin is not None:
            r["origin"] = origin
        regs.append(r)
    p = {"uscc": uscc_of(i), "name": f"资阳测试企业{i}有限公司", "in_park": in_park, "industry_code": "C3589",
         "established_on": "2018-06-01", "on_serious_dishonest_list": False, "violations": [],
         "device_registrations": regs}
    p.update(facts)
    return p


def open_h1(db, window_id: str = "2026-H1", **kw):
    from store import windows as W

    return W.open_window(db, window_id, **{**H1, **kw})


def submit_all(db, window_id: str, profiles: list[dict], today: date = IN_H1, claims=None) -> list:
    from store import applications as A

    return [A.submit_application(db, window_id, p, claims, today=today) for p in profiles]


def evaluate(db, window_id: str, **kw):
    from store.evaluation import evaluate_window

    return evaluate_window(db, window_id, **kw)


def app_of(db, application_id: str):
    from store.models import Application

    with db.read_session() as s:
        return s.get(Application, application_id)


def events_of(db, application_id: str) -> list:
    from store.audit import history

    with db.read_session() as s:
        return history(s, application_id)


def assert_history_complete(db, window_id: str) -> None:
    """Every application's history is an unbroken chain of state changes ending in its state:
    no change of state happened without its entry."""
    from sqlalchemy import select

    from store.models import Application

    with db.read_session() as s:
        apps = list(s.execute(select(Application).where(Application.window_id == window_id)).scalars())
    for a in apps:
        evs = events_of(db, a.id)
        assert evs, f"{a.id} has no history"
        state = None
        for e in evs:
            assert e.from_state == state, (a.id, e.action, e.from_state, state)
            state = e.to_state
        assert state == a.state, (a.id, state, a.state)


def ledger(db) -> list[tuple]:
    from sqlalchemy import select

    from store.models import Award

    with db.read_session() as s:
        return sorted(s.execute(select(Award.benefit_id, Award.subject_id, Award.window_id, Award.application_id,
                                       Award.amount_cny)).all())


def notices_of(db, window_id: str, kind: str) -> dict[str, str]:
    """application id → notice number."""
    from sqlalchemy import select

    from store.models import Notice

    with db.read_session() as s:
        return dict(s.execute(select(Notice.application_id, Notice.number)
                              .where(Notice.window_id == window_id, Notice.kind == kind)).all())


def grant_rows(db, window_id: str | None = None) -> list[tuple]:
    """Every stored grant decision (of one window, or all): (uscc, benefit, subject, status,
    amount, provisional, whether of an applicant), as the evaluations hold them."""
    from sqlalchemy import select

    from store.decisions import unpack_grants
    from store.models import Evaluation
    from store.rulesets import GrantIds

    q = select(Evaluation.uscc, Evaluation.application_id, Evaluation.grants, Evaluation.ruleset_seq)
    if window_id is not None:
        q = q.where(Evaluation.window_id == window_id)
    with db.read_session() as s:
        ids = GrantIds(s)
        return [(u, b, sub, st, amount, prov, a is not None) for u, a, packed, seq in s.execute(q)
                for b, sub, st, amount, prov in unpack_grants(packed, ids[seq])]


def decision_snapshot(db, window_id: str) -> tuple[list, list]:
    """Everything the window's evaluations and grant decisions say, without ids and
    timestamps, in a canonical order: (evaluations, decisions)."""
    from sqlalchemy import select

    from store.models import Evaluation
    from store.rulesets import decisions_of

    with db.read_session() as s:
        evals = sorted(
            (e.uscc, e.application_id is not None, e.ruleset_version, e.profile_hash, e.input_key, e.error,
             repr(decisions_of(db, e.ruleset_version, e.results)) if e.results is not None else None)
            for e in s.execute(select(Evaluation).where(Evaluation.window_id == window_id)).scalars())
    return evals, sorted(grant_rows(db, window_id), key=repr)


# --- rules in force ------------------------------------------------------------------------------
_evaluators: dict[str, object] = {}


def rules_copy(tmp_path, edits: dict[str, list[tuple[str, str]]] | None = None, name: str = "rules") -> Path:
    """A copy of the shipped rules/ with text replacements ({relative path: [(old, new)]});
    each `old` must occur."""
    import shutil

    dst = Path(tmp_path) / name
    shutil.copytree(REPO / "rules", dst)
    for rel, pairs in (edits or {}).items():
        f = dst / rel
        text = f.read_text(encoding="utf-8")
        for old, new in pairs:
            assert old in text, f"{rel}: {old!r} not found"
            text = text.replace(old, new, 1)
        f.write_text(text, encoding="utf-8")
    return dst


def packer(s, registry):
    """Packs a profile's JSON text as the store does (store.profiles), its dictionary stored
    first: for tests that put a profile into a snapshot directly."""
    from store import profiles

    key, zdict = profiles.packing(registry)
    profiles.store_dictionaries(s, [key])
    return lambda text: profiles.pack(text, key, zdict)


def evaluator_of(rules_dir) -> object:
    """The Evaluator of a rule directory (compiled once per content)."""
    import hashlib

    from engine import Evaluator, load_rulebook

    h = hashlib.sha256()
    for f in sorted(Path(rules_dir).rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(rules_dir)).encode() + f.read_bytes())
    key = h.hexdigest()
    if key not in _evaluators:
        _evaluators[key] = Evaluator(load_rulebook(rules_dir))
    return _evaluators[key]


@pytest.fixture
def rules_in_force():
    """Set the store's rules in force for one test (restored afterwards): call it with an
    Evaluator."""
    from store import rulesets

    before = rulesets._current
    yield rulesets.use
    rulesets.use(before)


# --- processes and faults --------------------------------------------------------------------------
def spawn(url: str, code: str, *, env: dict | None = None) -> "subprocess.Popen":
    """A Python process running `code` against the database at `url` (the store of this
    worktree, the test run's data directory)."""
    import subprocess
    import sys

    full = {**os.environ, "YAGU_DATABASE_URL": url, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(predicate, timeout: float, what: str, proc=None, poll: float = 0.02):
    """Poll until `predicate()` is truthy (returned); fail naming `what`, with the output of
    `proc` if it died."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = predicate()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what}: the process ended ({proc.returncode}) first:\n{out.decode()}\n{err.decode()}")
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def sigkill(proc) -> None:
    import signal

    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


class Outage:
    """A simulated database outage on one Database: while on, every statement through its
    engine fails with OperationalError (as a dropped connection does); PostgreSQL advisory
    locks are exempt, since a real outage would release them with the connection."""

    def __init__(self, db, start_on: str | None = None, after: int = 0):
        from sqlalchemy import event

        self.db, self.on, self.failures = db, False, 0
        self.start_on, self.after, self.seen = start_on, after, 0
        self._listener = self._check
        event.listen(db.engine, "before_cursor_execute", self._listener)

    def _check(self, conn, cursor, statement, parameters, context, executemany):
        from sqlalchemy.exc import OperationalError

        if self.start_on and not self.on and self.start_on in statement:
            self.seen += 1
            if self.seen > self.after:
                self.on = True
        if self.on and "pg_advisory" not in statement:
            self.failures += 1
            raise OperationalError(statement[:40], None, Exception("simulated outage: server closed the connection"))

    def end(self) -> None:
        from sqlalchemy import event

        self.on, self.start_on = False, None
        event.remove(self.db.engine, "before_cursor_execute", self._listener)
