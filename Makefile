# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432
POSTGRES_HOST_PORT = $(shell echo "$(TEST_POSTGRES_URL)" | sed -E 's#^[^@]*@##; s#/.*$$##')

.PHONY: demo up test test-sqlite test-postgres bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

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
