# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev migrate seed worker clean assets messages screenshots

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

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The screenshots in docs/screenshots/ (linked from the README), taken by the journey tests in Chromium. A plain
# `make test` takes them too, into a temporary folder, so it leaves the working tree as it was.
screenshots: install-dev
	UNDERSIGNED_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_journeys.py $(PYTEST_ARGS)

# The translatable text of the templates and the code, for translators: app/locale/messages.pot. A translation
# lives in app/locale/<locale>/LC_MESSAGES/messages.po (`pybabel init`/`update`), compiled with `pybabel compile -d
# app/locale`; UNDERSIGNED_LOCALE chooses it. English is the text in the templates and needs no catalog.
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg --sort-by-file --add-comments=Translators: -o app/locale/messages.pot .

clean:
	rm -rf $(VENV) var/*.db var/*.db-* .pytest_cache
