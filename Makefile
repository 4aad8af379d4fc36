# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The first Python 3.11+ on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: run test lint check clean soak agents agents-check

# The client distribution (clients/: goalpost-hook, the Codex bridge) after the server: `manage.py codex_bridge`
# imports it. Server first, so that reinstalling an older Goalpost that owned `goalpost-hook` cannot remove it.
$(VENV)/.installed: pyproject.toml clients/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Goalpost needs Python 3.11 or newer on PATH."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e .
	$(PY) -m pip install $(PIP_FLAGS) -e clients/
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@

run: $(VENV)/.installed
	$(PY) -m config.launcher

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

# The real agent clients the tests drive (Codex CLI, Claude Code), from npm at the versions pyproject.toml pins,
# cached outside the clone: a second run installs nothing.
agents: $(VENV)/.dev-installed
	$(PY) -m tests.support.agent_clients install

test: $(VENV)/.dev-installed agents
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n auto --maxprocesses=4 --dist loadgroup

# The bad day (30 minutes; GOALPOST_SOAK_MINUTES sets the length): 20 goals while workers are SIGKILLed, Redis
# restarts and PostgreSQL sessions are dropped again and again. Never part of `make test`.
soak: $(VENV)/.dev-installed
	$(PY) -m pytest -m soak -s -p no:randomly tests/faults

# The real-agent tests against the newest Codex CLI and Claude Code on npm, to see before pinning them.
agents-check: $(VENV)/.dev-installed
	$(PY) -m tests.support.agent_clients install --latest
	GOALPOST_AGENT_CLIENTS=latest $(PY) -m pytest -m real_agent -n auto --maxprocesses=4

clean:
	rm -rf $(VENV) var/staticfiles var/test-goalpost-*.sqlite3*
