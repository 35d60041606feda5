# Two commands for a new user: `make demo` and `make test`. Each builds .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_NOW ?= 2026-11-23T08:00:00+01:00
DEMO_DIR ?= var/demo
HOLIDAY_NOW ?= 2026-12-21T08:00:00+01:00

.PHONY: install demo demo-holiday demo-reset preview test lint fuzz chaos audit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The weekly job on the demo organisation in examples/: holds and digests land in var/demo/.
demo: $(STAMP)
	KINDLY_ROSTER_FILE=examples/roster.yaml \
	KINDLY_ICS__DIR=examples/calendars \
	KINDLY_ICS__HOLDS_DIR=$(DEMO_DIR)/holds \
	KINDLY_EMAIL__OUTBOX_DIR=$(DEMO_DIR)/outbox \
	$(BIN)/kindly run --once --now $(DEMO_NOW)
	@echo
	@echo "Digests (.eml, open them in any mail client): $(DEMO_DIR)/outbox/"
	@find $(DEMO_DIR)/outbox -name '*.eml' | sort
	@echo "Holds placed on the managers' calendars: $(DEMO_DIR)/holds/"

# Christmas week on the holiday-week demo organisation (examples/holiday-week/README.md):
# one --json line per manager, with who is away and until when, the holds and the unplaced.
demo-holiday: $(STAMP)
	@KINDLY_ROSTER_FILE=examples/holiday-week/roster.yaml \
	KINDLY_ICS__DIR=examples/holiday-week/calendars \
	KINDLY_ICS__HOLDS_DIR=$(DEMO_DIR)/holiday-week/holds \
	KINDLY_EMAIL__OUTBOX_DIR=$(DEMO_DIR)/holiday-week/outbox \
	$(BIN)/kindly run --once --now $(HOLIDAY_NOW) --json

demo-reset:
	rm -rf $(DEMO_DIR)

preview: $(STAMP)
	KINDLY_ROSTER_FILE=examples/roster.yaml KINDLY_ICS__DIR=examples/calendars \
	KINDLY_ICS__HOLDS_DIR=$(DEMO_DIR)/holds KINDLY_EMAIL__OUTBOX_DIR=$(DEMO_DIR)/outbox \
	$(BIN)/kindly preview --manager anouk@example.com --now $(DEMO_NOW) --out digest.html

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Lint, types and the whole test suite.
test: lint
	$(BIN)/pytest

fuzz: $(STAMP)
	$(BIN)/pytest -m fuzz

chaos: $(STAMP)
	$(BIN)/pytest -m chaos

# Benchmarks at organisation scale (not part of `make test`); table on stdout, JSON in var/bench/.
# e.g. make bench BENCH_ARGS="--sizes 200"
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Known vulnerabilities in the installed pins; says NOT AUDITED when advisory data is unreachable.
audit: $(STAMP)
	$(BIN)/python tools/audit.py

clean:
	rm -rf $(VENV) var build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
