# selfsup: `make book` builds the book, `make test` runs every check.
# On a fresh machine with python3, make and apt this installs everything:
# the virtual environment, the pinned requirements, the package, MathJax from the
# npm registry and (for the browser tests) Debian's chromium.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.selfsup-installed
MATHJAX := node_modules/mathjax/es5/tex-chtml.js
CHROMIUM ?= /usr/bin/chromium
HTML := _build/html
# Torch on a busy 2-core machine: one thread (see selfsup.runtime).
export OMP_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Progress bars stay off in builds and tests (stderr would be a build warning).
export SELFSUP_PROGRESS ?= 0
# A claim that fails raises in builds and tests (selfsup.book.claim); a reader's
# notebook only warns.
export SELFSUP_STRICT ?= 1
# Data the full profile downloads or converts stays inside the repository.
export SELFSUP_DATA ?= $(CURDIR)/_build/data

.PHONY: all setup book test test-unit test-chapters test-browser test-isolation test-full-smoke \
	bench-smoke bench claims homework chromium lint clean

all: book

setup: $(STAMP) $(MATHJAX)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

$(MATHJAX): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Execution is cached in the dev loop; in CI (CI=true) the cache is cleared so
# every chapter runs.
book: setup
ifdef CI
	rm -rf _build/.jupyter_cache
endif
	env -u SELFSUP_SEED $(JB) build . -W -n --keep-going
	@echo "The book is at $(abspath $(HTML))/index.html"

chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium at $(CHROMIUM). Install it with"; \
	    echo "  sudo apt-get install chromium"; \
	    echo "or point CHROMIUM=/path/to/chromium at one."; exit 1; \
	  fi; \
	fi

test-unit: setup
	$(PY) -m pytest tests -m "not browser and not isolation and not fullsmoke" -q -p no:cacheprovider

# Seed 1 here, seed 0 in the book build: every CI run checks every claim on two
# trajectories (the glued numbers of the prose come from seed 0). Two chapters at a time
# (pytest-xdist, one kernel per file, one torch thread each) on the two cores.
test-chapters: setup
	SELFSUP_SEED=1 $(PY) -m pytest --nbval-lax chapters -q -p no:cacheprovider -n 2 --dist loadfile

test-browser: setup chromium
	SELFSUP_CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests -m browser -q -p no:cacheprovider

# Colab isolation: each chapter alone in an empty folder, on a kernel from a fresh venv
# holding only the built wheel and its declared dependencies (tests/test_isolation.py).
test-isolation: setup
	$(PY) -m pytest tests -m isolation -q -p no:cacheprovider -n 2

# The full profile's code paths on the CPU: every chapter on an MNIST subset with the
# quick sizes, claim checks left out, on the CPU's stand-in for Apple's GPU, which raises
# where MPS or CUDA would (SELFSUP_DEVICE=emulated-mps; tests/test_full_profile.py).
test-full-smoke: setup
	$(PY) -m pytest tests -m fullsmoke -q -p no:cacheprovider -s

# Every benchmark comparison once on tiny inputs (no timing is asserted).
bench-smoke: setup
	$(PY) benchmarks/run.py --smoke

# The full benchmark report (benchmarks/results.{json,md,png}; several minutes).
bench: setup
	$(PY) benchmarks/run.py

# The seed sweep behind the claims appendix: every chapter under seeds 0-9
# (benchmarks/claims.{json,md}; about an hour on 2 cores, so not part of `test`).
claims: setup
	$(PY) benchmarks/claims.py

# A homework kit with every exercise, in _build/homework.
homework: setup
	rm -rf _build/homework
	$(PY) -m selfsup.book.homework build _build/homework

test: test-unit bench-smoke test-chapters book test-browser test-isolation test-full-smoke

lint: setup
	$(VENV)/bin/ruff check selfsup tests conftest.py book/_ext
	$(VENV)/bin/ruff format --check selfsup tests conftest.py book/_ext

clean:
	rm -rf _build
