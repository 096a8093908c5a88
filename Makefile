# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-dev migrate seed worker clean assets messages bench screenshots

$(BIN)/undersigned: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml $(BIN)/undersigned
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/undersigned

install-dev: $(VENV)/.dev-installed

migrate: install
	$(BIN)/undersigned db upgrade

seed: migrate
	$(BIN)/undersigned demo seed

# Development server with the demo organization; mail shows up at /dev/mailbox.
run: seed
	$(BIN)/undersigned serve --host $(HOST) --port $(PORT)

worker: install
	$(BIN)/undersigned worker

# The browser wallet for anonymous signing: npm packages pinned by assets/package-lock.json, bundled by esbuild
# into app/static/wallet.js, which is committed (so `make run` needs no Node.js).
assets:
	cd assets && npm ci --no-audit --no-fund && npm run build

# Two pytest-xdist workers, one per core, each with a PostgreSQL database and Redis databases of its own (see
# tests/conftest.py); a module stays on one worker, so its live server and demo organization are built once.
# Databases of their own (live servers, killed servers, the linkage day) are copies of a template each worker
# migrates once, and PostgreSQL's are dropped by a thread while the tests go on (tests/server_process.py).
# --no-loadscope-reorder: modules are handed out in the order tests/conftest.py gives them, the slowest first.
# `make test PYTEST_WORKERS=0` runs in one process; PYTEST_ARGS still takes any pytest option.
# Compiled modules are kept (__pycache__, ignored by git) even where the environment says not to write them
# (PYTHONDONTWRITEBYTECODE): the workers, and every server and command the tests start as a process of its own,
# would otherwise compile the app from source each time. Collecting the suite took 12.9 s without them, 6.2 s
# with them; the first run after a clone writes them.
PYTEST_WORKERS ?= 2

test: install-dev
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# What CI checks before the suite (.ci/run): ruff's rules and format, mypy on app/ and tests/ (all configured in
# pyproject.toml), and the package layers (docs/architecture.md, "Layers"): import-linter's contracts fail on an
# import that goes up a layer, function-local ones included.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The screenshots in docs/screenshots/ (linked from the README), taken by the journey tests in Chromium. A plain
# `make test` takes none, so it leaves the working tree as it was.
screenshots: install-dev
	UNDERSIGNED_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_journeys.py tests/test_journeys_organizer_admin.py $(PYTEST_ARGS)

# Every bench at a small size, a few minutes in all (PostgreSQL on 127.0.0.1, Debian's wrk), each printing its
# table, adding it to bench/results/ and putting its newest runs in docs/benchmarks.md. `make bench BENCH_FULL=1`:
# the sizes the targets are stated at (about an hour); docs/benchmarks.md names each bench's flags.
# BENCH_DATABASE_PREFIX=you_ keeps runs apart.
ifdef BENCH_FULL
BENCH_SIGN := --workers 2 --signatures 5000 --rounds 5
BENCH_COMMENTS := --requests 1000 --readers 16
BENCH_TOKENS := --bits 3072 --petitions 20 --accounts 100 --workers 2
BENCH_LOG := --entries 1000000
BENCH_EXPORT := --signatures 1000000
BENCH_PAGE := --sizes 10000,100000,1000000 --comments 10000 --workers 1,2,4 --duration 10 --quiet-wait 600
BENCH_VIRAL := --signatures 1000000 --comments 10000 --duration 30 --open-pages 10000
BENCH_STACK := --signatures 1000000 --comments 10000 --requests 400 --duration 10
BENCH_BALLOTS := --answers 20000 --clients 16 --counted 100000 --requests 20
else
BENCH_SIGN := --workers 2 --signatures 1000 --rounds 3
BENCH_COMMENTS := --requests 200 --readers 8
BENCH_TOKENS := --bits 3072 --petitions 5 --accounts 20 --workers 1
BENCH_LOG := --entries 50000
BENCH_EXPORT := --signatures 50000
BENCH_PAGE := --sizes 10000,100000 --comments 1000 --workers 1,2 --duration 5
BENCH_VIRAL := --signatures 20000 --comments 500 --duration 10 --open-pages 1000 --poll-seconds 5
BENCH_STACK := --signatures 10000 --comments 200 --requests 200 --duration 5
BENCH_BALLOTS := --answers 1000 --clients 16 --counted 20000 --requests 10
endif

bench: install-dev
	$(BIN)/python bench/sign_throughput.py $(BENCH_SIGN)
	$(BIN)/python bench/comment_pages.py $(BENCH_COMMENTS)
	$(BIN)/python bench/anonymous_issuance.py $(BENCH_TOKENS)
	$(BIN)/python bench/log_scale.py $(BENCH_LOG)
	$(BIN)/python bench/export_scale.py $(BENCH_EXPORT)
	$(BIN)/python bench/petition_page.py $(BENCH_PAGE)
	$(BIN)/python bench/viral_petition.py $(BENCH_VIRAL)
	$(BIN)/python bench/request_stack.py $(BENCH_STACK)
	$(BIN)/python bench/ballots.py $(BENCH_BALLOTS)

# The translatable text of the templates and the code, for translators: app/locale/messages.pot. A translation
# lives in app/locale/<locale>/LC_MESSAGES/messages.po (`pybabel init`/`update`), compiled with `pybabel compile -d
# app/locale`; UNDERSIGNED_LOCALE chooses it. English is the text in the templates and needs no catalog.
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg --project=Undersigned --sort-by-file --add-comments=Translators: \
		-o app/locale/messages.pot .

clean:
	rm -rf $(VENV) var/*.db var/*.db-* .pytest_cache
