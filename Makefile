# spectra-edge: the two commands of the README are `make demo` and `make test`.
# Both set up what they need themselves: a virtualenv with the project, and Debian's
# mosquitto (installed with apt-get when missing).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-train mosquitto demo test lint bench clean
# Public JCAMP-DX test files (jcamp-dx.org, R. S. McDonald) ship in this sdist; tests read them
# from it and skip when the download fails (tests/data/jcamp/public/PROVENANCE.md).
JCAMP_SDIST := $(VENV)/sdist/jcamp-1.3.2.tar.gz

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

$(JCAMP_SDIST): | $(BIN)/.installed
	$(BIN)/python -m pip download -q --no-binary :all: --no-deps -d $(VENV)/sdist jcamp==1.3.2 \
		|| echo "jcamp sdist not downloaded: tests of its public JCAMP-DX files will skip"

install-train: install
	$(BIN)/python -m pip install -q -e '.[train]'

mosquitto:
	bash scripts/ensure-mosquitto.sh

demo: install
	bash scripts/ensure-mosquitto.sh --start
	$(BIN)/spectra-edge demo

test: install mosquitto $(JCAMP_SDIST)
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check spectra_io hal edge controlroom tests scripts bench
	$(BIN)/ruff format --check spectra_io hal edge controlroom
	$(BIN)/mypy

bench: install mosquitto
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
