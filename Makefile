# Two commands on a fresh machine:
#   make run    create .venv, install everything, open the app on the embedded demo corpus
#   make test   the same install if needed, then the fast test suite
# llama-cpp-python builds from source (about 3 minutes on 2 cores), portable by default:
# curator/cpuflags.py turns /proc/cpuinfo into explicit GGML flags (AVX2 baseline, AVX-512
# where listed, never AMX, no -march=native). A changed flag set rebuilds it (pip's wheel
# cache is keyed by version, not flags, so the build skips it). To force a native build:
#   make install LLAMA_NATIVE=1
# or to choose the flags by hand (e.g. leave AVX-512 out):
#   make install LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
# `make install` ends with `curator doctor`, which fails it loudly if the build cannot run.
# torch comes first and pinned: torch==2.13.0 is the CPU wheel; a bare `torch` would pull
# a multi-GB CUDA build. Override TORCH_SPEC on other machines, e.g.
#   make run TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMA_SPEC := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
ifeq ($(LLAMA_NATIVE),1)
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=ON
else
LLAMA_CMAKE_ARGS := $(shell $(PYTHON) curator/cpuflags.py)
endif
LLAMA_ARGS_FILE := $(VENV)/.llama-cmake-args
LLAMA_STAMP := $(VENV)/.llama-built
HOST ?= 127.0.0.1
PORT ?= 7860
PYTEST_ARGS ?=

.PHONY: install run test test-slow test-all test-postgres browser-deps postgres-deps lint bench \
	clean FORCE

# The flag file changes only when the flags do, so the llama build reruns only then.
$(LLAMA_ARGS_FILE): FORCE
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo '$(LLAMA_CMAKE_ARGS)' | cmp -s - $@ || echo '$(LLAMA_CMAKE_ARGS)' > $@

$(LLAMA_STAMP): $(LLAMA_ARGS_FILE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "building $(LLAMA_SPEC) with CMAKE_ARGS=$(LLAMA_CMAKE_ARGS)"
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$(LLAMA_SPEC)"
	touch $@

# The install ends with `curator doctor` (database, the embedded LLM on a >= 600-token
# prompt in a child process, the guide model, threads, CPU flags, memory): a build that
# cannot run here fails the install, with the fix, instead of the first `generate`.
$(STAMP): pyproject.toml $(LLAMA_STAMP)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx,postgres]"
	$(BIN)/curator doctor
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/curator serve --demo --host $(HOST) --port $(PORT)

# The fast default suite (a few minutes on 2 cores).
test: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# Tests that load real models or drive a real browser. Exit code 5 ("no tests
# collected") counts as success so an empty marker set does not fail CI.
test-slow: install browser-deps
	$(BIN)/python -m pytest -m "slow or browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-all: test test-slow

# Headless Chromium from Debian for the browser tests (needs root, as in CI).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "browser tests need /usr/bin/chromium: sudo apt-get install chromium"; \
		fi; \
	fi

# Debian's PostgreSQL server binaries for the PostgreSQL half of the suite (needs root, as
# in CI); the tests start a throwaway server of their own (tests/postgres.py).
postgres-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else \
			echo "PostgreSQL tests need the server binaries: sudo apt-get install postgresql"; \
		fi; \
	fi

# The fast suite on SQLite and on a throwaway PostgreSQL server (started and stopped here).
test-postgres: install postgres-deps
	@dir=$$(mktemp -d) && eval "$$(python3 tests/postgres.py start $$dir)" && \
		$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS); code=$$?; \
		python3 tests/postgres.py stop $$dir; rm -rf $$dir; exit $$code

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
