"""Shared fixtures: the shipped rulebook and evaluators (one compile per test session)."""
from __future__ import annotations

import pytest

from engine import Evaluator, load_rulebook


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
