"""Shared fixtures: the shipped rulebook and evaluators (one compile per test session), and a
private data directory and complete notice settings for every test run."""
from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pytest

# Set before any test imports the store: files the product writes go to a private temporary
# directory, never the working tree; official notices need every setting filled in.
os.environ.setdefault("YAGU_DATA_DIR", tempfile.mkdtemp(prefix="yagu-test-data-"))
os.environ.setdefault("YAGU_NOTICE_SETTINGS", str(Path(__file__).parent / "fixtures" / "notice-settings.yaml"))


def _workday_schedules() -> str:
    """The shipped holiday schedules, and for each year after the last one published up to
    next year a stand-in that counts Monday to Friday, marked as such. Many tests count 补正
    and 公示 deadlines from the real today: they must not start failing on the day those
    deadlines first reach a year whose State Council notice is not out yet. The product never
    guesses a year (tests/test_workdays.py checks the shipped directory)."""
    shipped = Path(__file__).resolve().parent.parent / "rules" / "workdays"
    out = Path(tempfile.mkdtemp(prefix="yagu-test-workdays-"))
    for f in shipped.iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    years = [int(f.stem) for f in shipped.glob("[0-9][0-9][0-9][0-9].yaml")]
    for year in range(max(years) + 1, date.today().year + 2):
        (out / f"{year}.yaml").write_text(
            f"year: {year}\n"
            f"notice: {{title: 测试替代安排（周一至周五上班；非国务院办公厅通知）, doc_no: ~, published_on: {date.today()}}}\n"
            "holidays: []\nworkdays: []\n", encoding="utf-8")
    return str(out)


os.environ.setdefault("YAGU_WORKDAYS_DIR", _workday_schedules())

from engine import Evaluator, load_rulebook  # noqa: E402


@pytest.fixture(scope="session")
def book():
    return load_rulebook()


@pytest.fixture(scope="session")
def engine_eval(book):
    return Evaluator(book, "durable_rules")


@pytest.fixture(scope="session")
def interp_eval(book):
    """The reference semantics (plain-Python interpreter), for equivalence checks."""
    return Evaluator(book, "interpreter")


@pytest.fixture(scope="session")
def registry(book):
    return book.fields
