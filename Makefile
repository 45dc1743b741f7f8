# The two commands a newcomer needs: `make rehearse` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: rehearse test test-fast cluster-deps bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

rehearse: $(STAMP)
	$(BIN)/deploysim rehearse --out reports/default

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf reports .pytest_cache
