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
def oracle_eval(book):
    return Evaluator(book, "oracle")
