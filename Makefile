# Everything bootstraps itself: a fresh clone needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KEY := .local/secret_key
WHEELHOUSE := .local/wheelhouse

.PHONY: setup run test lint bench soak clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Compiled at install (pip's default): with PYTHONDONTWRITEBYTECODE set, as on CI, a module
# left uncompiled is compiled again in every process that imports it.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# This checkout as the `chatcluster` app, the way a host installs it (pyproject.toml).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The wheels a host project needs, for the offline install test (tests/packaging). Apart
# from the install above, so that `make -j` fetches them while it runs.
WHEELS := $(WHEELHOUSE)/.downloaded
$(WHEELS): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip download --quiet --disable-pip-version-check --only-binary=:all: -d $(WHEELHOUSE) \
		-r requirements.txt $$(grep '^websockets==' requirements-dev.txt)
	touch $(WHEELS)

# manage.py writes a private development key on first use; settings need one to import.
$(KEY): $(STAMP)
	$(PY) manage.py check -v0

# The browser tests drive Debian's Chromium; without it (no apt, no root, no network)
# they skip and say so. Playwright's own browser download is never used.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@apt-get install -y -q chromium >/dev/null 2>&1 || echo "chromium not installed: the browser tests will skip"

# Reactions are emoji: without a colour emoji font Chromium draws them as boxes (the
# screenshot in docs/, a person reading a browser test's failure picture).
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
$(EMOJI_FONT):
	@apt-get install -y -q fonts-noto-color-emoji >/dev/null 2>&1 || echo "no colour emoji font: reactions show as boxes in screenshots"

# nginx for `runcluster --balancer nginx` and its tests (tests/deploy); without it they skip.
NGINX := /usr/sbin/nginx
$(NGINX):
	@apt-get install -y -q nginx >/dev/null 2>&1 || echo "nginx not installed: the nginx tests will skip"

# The JS client's Node tests (tests/js) need ws and typescript from npm; without npm, or
# offline, they skip and say so (tests/chat/test_client_js.py).
JS_MODULES := tests/js/node_modules/.package-lock.json
$(JS_MODULES): tests/js/package-lock.json
	@(command -v npm >/dev/null && npm ci --prefix tests/js --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null 2>&1 && touch $@) || echo "tests/js not installed (no npm, or no network): the JS client tests will skip"

setup: $(STAMP) $(WHEELS) $(KEY) $(CHROMIUM) $(EMOJI_FONT) $(NGINX) $(JS_MODULES)

run: setup
	$(PY) manage.py runcluster

# mypy reads the app under its import name through this link (pyproject.toml, [tool.mypy]).
TYPECHECK := .local/typecheck/chatcluster
$(TYPECHECK):
	mkdir -p $(dir $@) && ln -sfn ../../chat $@

lint: setup $(TYPECHECK)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# PYTEST_ARGS selects or adds to the run, e.g. PYTEST_ARGS='-m "not db_agnostic"' (.ci/run).
PYTEST_ARGS ?=

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# perf.py keeps its own deadline (--budget, about 18 minutes for all its parts); the
# timeout is the backstop: its SIGTERM stops perf.py and everything it started.
# `make bench BENCH_ARGS="--quick --only storm"` runs one part of perf.py.
BENCH_TIMEOUT ?= 1500
BENCH_ARGS ?=

bench: setup
	$(PY) bench/layers.py
	$(PY) bench/recovery.py
	$(PY) bench/ratelimit.py
	timeout --kill-after=30 $(BENCH_TIMEOUT) $(PY) bench/perf.py $(BENCH_ARGS)

# A chaos soak: 3 nodes, ~200 clients in 20 rooms, random faults (tests/soak.py).
SOAK_MINUTES ?= 10

soak: setup
	SOAK_MINUTES=$(SOAK_MINUTES) $(PY) -m tests.soak

clean:
	rm -rf .run .local/test-db.sqlite3 test-output
