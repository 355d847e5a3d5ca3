# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# MNIST comes from $(MNIST_CNN_DATA) when set (a folder holding mnist/), else it is downloaded.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
MODEL  ?= fast

CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run check test lint docs docs-serve clean

$(BIN)/mnist-cnn: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,cluster,docs,tracking]'
	touch $@

run: $(BIN)/mnist-cnn
	$(BIN)/mnist-cnn data download
	$(BIN)/mnist-cnn train $(MODEL)

# The browser tests drive Debian's Chromium (never a downloaded browser).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# While working: ruff, the import contracts and the tests that train nothing (under 2 min).
check: $(BIN)/mnist-cnn
	$(BIN)/mnist-cnn data download
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m quick -n 2

# Everything, on both cores: each module goes whole to one xdist worker (its runs trained
# once), and the tests that time themselves or hold servers and clusters go together (conftest.py).
test: $(BIN)/mnist-cnn $(CHROMIUM)
	$(BIN)/mnist-cnn data download
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(MAKE) docs
	$(BIN)/python -m pytest -n 2 --dist loadscope

# The documentation site (mkdocs.yml, docs/): built strict, so a broken link or page fails.
docs: $(BIN)/mnist-cnn
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "docs: site/index.html"

docs-serve: $(BIN)/mnist-cnn
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

lint: $(BIN)/mnist-cnn
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache .ruff_cache
