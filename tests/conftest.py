"""Shared fixtures: the shipped rulebook and evaluators (one compile per test session), and a
private data directory and complete notice settings for every test run."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test imports the store: files the product writes go to a private temporary
# directory, never the working tree; official notices need every setting filled in.
os.environ.setdefault("YAGU_DATA_DIR", tempfile.mkdtemp(prefix="yagu-test-data-"))
os.environ.setdefault("YAGU_NOTICE_SETTINGS", str(Path(__file__).parent / "fixtures" / "notice-settings.yaml"))

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
