# kfdash: `make run` sets up and starts the dashboard (local mode); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test test-fast lint setup setup-dev system-deps migrate clean

run: setup migrate
	$(BIN)/python manage.py bootstrap
	@echo "kfdash is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	exec $(BIN)/uvicorn dashboard.asgi:application --host $(HOST) --port $(PORT) \
		--no-server-header --timeout-graceful-shutdown 5

test: setup-dev system-deps
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

# Everything but the browser journeys, for a quick loop while coding.
test-fast: setup-dev
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup-dev
	$(BIN)/ruff check .

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Programs the tests drive that do not come from PyPI (Debian's Chromium).
system-deps:
	@sh .ci/system-deps

migrate: setup
	$(BIN)/python manage.py migrate --noinput -v 0

clean:
	rm -rf $(VENV)
