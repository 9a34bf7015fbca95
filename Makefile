# `make run` and `make test` set everything up on a fresh machine: a .venv, the install, the knowledge base.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench setup kb clean

run: kb
	@$(BIN)/policybot chat

test: kb
	@$(BIN)/python -m pytest

bench: kb
	@$(BIN)/python tests/bench.py

setup: $(STAMP)

# Reinstalled only when pyproject.toml changes (the install is editable, so code edits need nothing).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]" >&2
	@touch $(STAMP)

# Built when missing or stale (its sources or the knowledge code changed); quick no-op otherwise.
kb: setup
	@$(BIN)/policybot kb build --if-stale >&2

clean:
	rm -rf $(VENV) data/kb.pickle
