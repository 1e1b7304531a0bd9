# The two commands a newcomer needs: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo demo-stop test lint format bench bench-pages migrate clean conformance static fuzz audit screenshots

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: install
	bin/demo

demo-stop:
	bin/demo --stop

# TEST_WORKERS=2: two pytest-xdist workers, each taking whole test files (--dist loadfile in
# pyproject.toml). Not the default yet: the Overview cache tests fail under it (README "Testing").
TEST_WORKERS ?= 0
test: install
	bin/test -n $(TEST_WORKERS)

# The FinOps Foundation's FOCUS validator on focus_line_items (demo data of each cloud and every
# sample in ../shared/data/billing); fails on any failed rule but the documented validator quirks.
conformance: install
	bin/conformance

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# Server time of every page at demo scale (90 days), per role; one BENCH line per page (<= 150 ms).
bench-pages: install
	$(BIN)/python bench/pages.py

# The README's page screenshots (docs/screenshots/), from a running `make demo` (bin/screenshots.py).
screenshots: install
	$(BIN)/python bin/screenshots.py

# Production static files (hashed names + manifest, what config.settings.production serves).
static: install
	DJANGO_SETTINGS_MODULE=config.settings.production \
	  DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-collectstatic-only-not-a-secret} \
	  $(BIN)/python manage.py collectstatic --noinput

# Nightly-size fuzzing: 10,000 generated files per parser format, 100 API cases per operation plus
# Schemathesis's coverage phase (boundary values of every parameter); `make test` runs 300 and 5.
fuzz: install
	PARSER_FUZZ_FILES=10000 SCHEMATHESIS_EXAMPLES=100 SCHEMATHESIS_COVERAGE=1 bin/test tests/security/test_parser_fuzz.py \
	  tests/security/test_api_fuzz.py -q

# Known vulnerabilities in the installed (locked) dependencies.
audit: install
	bin/audit

migrate: install
	$(BIN)/python manage.py migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
