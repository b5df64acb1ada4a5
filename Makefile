# Two entry points that work on a fresh clone: `make demo` and `make test`.
# `make demo` installs only what a scan needs; `make test` adds the development extras.
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP   := $(VENV)/.installed
OUT     ?= out/demo

.PHONY: demo test lint bench update-gold clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(RUNTIME)
	@command -v dot >/dev/null || echo "note: Graphviz's dot was not found, so the report draws the graph in tiers by role (install graphviz for its layered drawing; see README)"
	$(BIN)/orchscan scan sample_traces/traces --openapi sample_traces/openapi --owners sample_traces/owners.yaml --out $(OUT)
	@echo "open $(OUT)/report.html (the command is $(BIN)/orchscan, or run 'source $(VENV)/bin/activate')"

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check collectors analyzer reports orchscan tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

# After an intended change of the sample's reports: rewrite tests/gold/ (review the diff, commit it).
update-gold: $(STAMP)
	ORCHSCAN_UPDATE_GOLD=1 $(BIN)/pytest -q tests/cli/test_gold.py

lint: $(STAMP)
	$(BIN)/ruff format --check collectors analyzer reports orchscan tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/scan.py --spans 1000000
	$(BIN)/python benchmarks/ingest.py --spans 1000000
	$(BIN)/python benchmarks/operations.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) out build *.egg-info
