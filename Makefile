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
	# exit 1 is the built-in candidate rolled back, as it should be: the report is written
	$(BIN)/deploysim rehearse --out reports/default || [ $$? -eq 1 ]

# the cluster tests need Debian's prometheus and the control plane built from Go modules
# (cached in ~/.cache/deploysim/k8s/<version>; the first build takes a while)
cluster-deps:
	bash k8s/setup.sh

test: $(STAMP) cluster-deps
	$(BIN)/python -m pytest

# every test that needs no cluster (and no Go build): the unit tests of tests/kube too
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not cluster"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf reports .pytest_cache
