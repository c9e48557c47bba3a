# The two commands a new user needs: `make run` and `make test`. Everything else here serves them.
# The Python the virtualenv is made with: 3.12 or newer where the machine has it (on the PATH or under pyenv), else
# python3 (3.11 works as well). On 3.12+ coverage reads sys.monitoring, which adds a sixth to the suite's time, where
# 3.11's line tracer adds two thirds (README, "The suite").
NEWER_PYTHONS := python3.12 python3.13 $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.1[23].*/bin/python3)
PYTHON ?= $(firstword $(foreach p,$(NEWER_PYTHONS),$(shell $(p) -c 'import sys; assert sys.version_info >= (3, 12)' \
	2>/dev/null && echo $(p))) python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install catalogs browser lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Compiled catalogs (.mo) are build output, made from the committed .po files.
catalogs: install
	$(BIN)/pybabel compile -d service/locale -D messages

# Debian's headless Chromium (chromium-headless-shell: the same Blink as the full browser for a third of its CPU;
# tests/browser.py falls back to `chromium`) and CJK fonts, so Chinese pages render, for the browser tests; installed
# when missing and we may (CI runs as root).
browser:
	@if command -v chromium-headless-shell >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium-headless-shell fonts-noto-cjk; \
	elif command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	else echo "Chromium or CJK fonts are missing and cannot be installed here: browser tests may be skipped."; fi

run: install catalogs
	$(BIN)/kindling dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The suite on TEST_WORKERS processes (pytest-xdist; each starts its own PostgreSQL, Redis and localstripe on free
# ports), the ten slowest tests printed, and the domain packages' coverage held at COVERAGE_FLOOR percent.
TEST_WORKERS ?= 3
COVERAGE_FLOOR ?= 90
# On 3.12+ coverage uses sys.monitoring, which sees SQLAlchemy's greenlets without following them (pyproject.toml).
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): the app's modules, compiled
# once up front, are read back by the `kindling` processes the process tests start (about a quarter of a second of
# CPU each) instead of compiled again, and pytest's rewritten test modules are kept for the next run.
pytest: install catalogs browser
	@unset PYTHONDONTWRITEBYTECODE; $(BIN)/python -m compileall -q campaigns payments fulfillment service; \
	if $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		export COVERAGE_CORE=sysmon KINDLING_COVERAGE_GREENLETS=thread; fi; \
	set -x; $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=10 \
		--cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

# mypy runs beside pytest, on what CPU the workers leave while they wait on their servers; either failing fails the
# command. Not at a lower priority: on a machine kept busy by other work, a niced mypy would wait for all of it.
test: lint
	@$(MAKE) --no-print-directory -j2 pytest typecheck

bench: install catalogs
	$(BIN)/python -m bench.launch_rush
	$(BIN)/python -m bench.close
	$(BIN)/python -m bench.fulfillment
	$(BIN)/python -m bench.page
	$(BIN)/python -m bench.design_log
	$(BIN)/python -m bench.queue
	$(BIN)/python -m bench.update_fanout

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
