# The two set-up commands of the README: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test install install-dev system-deps system-deps-test bench

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip

system-deps:
	./scripts/install-system-deps

system-deps-test:
	./scripts/install-system-deps --test

install: $(VENV)/bin/python system-deps
	$(PY) -m pip install -q -e .

install-dev: $(VENV)/bin/python system-deps-test
	$(PY) -m pip install -q -e '.[dev]'

serve: install
	$(VENV)/bin/yagu serve --host $(HOST) --port $(PORT)

test: install-dev
	$(PY) -m pytest -q

bench: install-dev
	$(PY) bench/engine.py
