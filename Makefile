# kfdash: `make run` sets up and starts the dashboard (local mode); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := static/vendor/.ready  # browser assets from npm (see the vendor target)
KFP1_VENV := .venv-kfp1
HOST ?= 127.0.0.1
PORT ?= 8000
# glibc keeps a malloc arena per thread (up to 8 a core): with the engine's short-lived
# step threads the server crept ~1 MiB a run; two arenas hold it level (bench/RESULTS.md).
MALLOC_ARENA_MAX ?= 2
export HOST PORT MALLOC_ARENA_MAX

.PHONY: run test test-fast test-slow bench lint setup setup-dev system-deps migrate clean vendor

run: setup migrate
	$(BIN)/python manage.py bootstrap
	@echo "kfdash is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	exec $(BIN)/uvicorn dashboard.asgi:application --host $(HOST) --port $(PORT) \
		--no-server-header --timeout-graceful-shutdown 5

test: setup-dev system-deps
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

# Everything but the browser journeys and the slow tests (API fuzz, load), for a quick
# loop while coding; `make test` runs them all.
test-fast: setup-dev
	$(BIN)/pytest -m "not e2e and not slow" $(PYTEST_ARGS)

# The slow tests alone (the API fuzz and load tests, a few minutes); `make test` runs them
# too, with everything else.
test-slow: setup-dev
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

# Every benchmark in bench/, one after another (tens of minutes; each prints its table,
# to compare with bench/RESULTS.md). Never part of the tests.
BENCHMARKS := local_engine pipelines runs_list vs_mlflow live_updates load argo_record \
	notebook_spawn notebook_proxy memory
bench: setup-dev
	set -e; for name in $(BENCHMARKS); do echo "== bench/$$name.py"; \
		$(BIN)/python bench/$$name.py; done

lint: setup-dev
	$(BIN)/ruff check .

setup: $(VENV)/.runtime $(VENDOR)
setup-dev: $(VENV)/.dev $(VENDOR)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(KFP1_VENV)/.ready | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The kfp 1.8 SDK conflicts with kfp 2, so the tests drive it from a virtualenv of its own.
$(KFP1_VENV)/.ready: requirements-kfp1.txt
	$(PYTHON) -m venv $(KFP1_VENV)
	$(KFP1_VENV)/bin/pip install --quiet --upgrade pip
	$(KFP1_VENV)/bin/pip install --quiet -r requirements-kfp1.txt
	touch $@

# Third-party browser assets: npm installs the versions package-lock.json pins, and the
# files the pages load are copied into static/vendor/ (served like our own; never a CDN).
vendor: $(VENDOR)

$(VENDOR): package.json package-lock.json
	@sh .ci/system-deps npm
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf static/vendor && mkdir -p static/vendor
	cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs static/vendor/cytoscape.esm.min.js
	cp node_modules/cytoscape/LICENSE static/vendor/cytoscape.LICENSE
	cp node_modules/elkjs/lib/elk-api.js node_modules/elkjs/lib/elk-worker.min.js static/vendor/
	cp node_modules/elkjs/LICENSE.md static/vendor/elkjs.LICENSE.md
	cp node_modules/plotly.js-dist-min/plotly.min.js static/vendor/plotly.min.js
	cp node_modules/plotly.js-dist-min/LICENSE static/vendor/plotly.LICENSE
	touch $@

# Programs the tests drive that do not come from PyPI (Debian's Chromium).
system-deps:
	@sh .ci/system-deps

migrate: setup
	$(BIN)/python manage.py migrate --noinput -v 0

clean:
	rm -rf $(VENV) $(KFP1_VENV) node_modules static/vendor
