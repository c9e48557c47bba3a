# The two commands a new user needs: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
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

# Debian's Chromium (and CJK fonts, so Chinese pages render) for the browser tests; installed when missing and we
# may (CI runs as root).
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk; \
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
pytest: install catalogs browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=10 \
		--cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

test: lint typecheck pytest

bench: install catalogs
	$(BIN)/python -m bench.launch_rush
	$(BIN)/python -m bench.close
	$(BIN)/python -m bench.fulfillment
	$(BIN)/python -m bench.page
	$(BIN)/python -m bench.design_log
	$(BIN)/python -m bench.update_fanout

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
