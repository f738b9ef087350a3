# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432
POSTGRES_HOST_PORT = $(shell echo "$(TEST_POSTGRES_URL)" | sed -E 's#^[^@]*@##; s#/.*$$##')

.PHONY: demo up test test-sqlite test-postgres bench lint lock lock-upgrade clean

# The locks (docs/operations.md, "Dependencies and the lock"): every package pinned with its
# hashes. production.txt is what the image installs (no extras); dev.txt adds the embedded stack
# and the test tools, and is what the venv installs. The project itself goes in without its
# dependencies, so it is neither hash-checked nor able to pull in an unlocked package; pip check
# then names a dependency pyproject.toml declares that the lock lacks (run make lock).
# build.txt is the build backend (setuptools), locked too: the project is built with it, without
# build isolation, so not even the build fetches an unlocked package.
LOCKS := requirements/production.txt requirements/dev.txt requirements/build.txt
$(BIN)/.installed: pyproject.toml $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt -r requirements/build.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

# make lock: the locks again from pyproject.toml, keeping every pin that still fits it (after a
# dependency is added, removed or re-pinned there). make lock-upgrade (or make lock UPGRADE=1)
# also takes the newest release of every package pyproject.toml leaves free; make lock
# UPGRADE_PACKAGE=name, of that one. Resolved for CPython 3.11 (the image's) on every OS
# (--universal), so one lock serves Linux and macOS. uv rather than pip-tools: one pinned binary
# with no dependencies of its own to install into the venv it locks, and it resolves in a second.
UV_VERSION := 0.13.8
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
	--universal --custom-compile-command "make lock  (make lock-upgrade for newer releases: docs/operations.md)" \
	$(if $(UPGRADE),--upgrade) $(if $(UPGRADE_PACKAGE),--upgrade-package $(UPGRADE_PACKAGE))
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(UV_COMPILE) -o requirements/production.txt
	$(UV_COMPILE) --extra test -o requirements/dev.txt
	$(subst pyproject.toml,requirements/build.in,$(UV_COMPILE)) -o requirements/build.txt

lock-upgrade:
	$(MAKE) --no-print-directory lock UPGRADE=1

# The embedded stack (Temporal dev server + Web UI, localstripe, SMTP sink, worker) and the
# source documents' cases; the stack keeps running afterwards until Ctrl-C.
demo: $(BIN)/.installed
	$(BIN)/python -m subchange.dev demo

# The stack alone.
up: $(BIN)/.installed
	$(BIN)/python -m subchange.dev up

# ruff, then mypy (both set in pyproject.toml), then the suite on SQLite and, when one answers at
# 127.0.0.1:5432, on PostgreSQL: the two passes
# side by side (TEST_JOBS=1 runs them one after the other). Each pass keeps about one core busy;
# its output is printed whole when it ends (--output-sync), so the two don't interleave. Side by
# side (TEST_PASSES=both), a test marked one_pass(on=...) runs in that pass only (tests/conftest.py).
TEST_JOBS ?= 2
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	@if $(BIN)/python -c "import socket, sys; h, _, p = sys.argv[1].rpartition(':'); \
	socket.create_connection((h or '127.0.0.1', int(p or 5432)), 1)" "$(POSTGRES_HOST_PORT)" 2>/dev/null; \
	then TEST_PASSES=both $(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-sqlite test-postgres; \
	else $(MAKE) --no-print-directory test-sqlite && \
	echo "PostgreSQL is not reachable at $(POSTGRES_HOST_PORT): ran the SQLite suite only"; fi

test-sqlite: $(BIN)/.installed
	$(BIN)/pytest -q -p no:cacheprovider

test-postgres: $(BIN)/.installed
	TEST_DATABASE=postgresql TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest -q -p no:cacheprovider

# The throughput benchmark (bench/run.py, bench/README.md): the full change against a bare
# seven-activity workflow on one embedded stack. Options: make bench BENCH_ARGS="--help".
bench: $(BIN)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf var .pytest_cache
