# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create .venv and install the pinned lock (requirements.lock) when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml Makefile | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9

.PHONY: demo test dashboard bench lint lock clean install

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)  ## run the backtest runbook on the sample data into reports/
	$(BIN)/workbench demo

test: $(STAMP)  ## every test: unit, property, golden, notebooks, browser, doctests, import contract
	$(BIN)/python -m pytest

dashboard: $(STAMP)  ## serve the portfolio review on http://127.0.0.1:8866 (workbench dashboard risk|lab for the others)
	$(BIN)/workbench dashboard portfolio

bench: $(STAMP)
	$(BIN)/python bench/bench_engines.py
	$(BIN)/python bench/bench_data.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_risk_checks.py
	$(BIN)/python bench/bench_risk.py
	$(BIN)/python bench/bench_risk_report.py
	$(BIN)/python bench/bench_vector_risk.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_overfitting.py
	$(BIN)/python bench/bench_robustness.py
	$(BIN)/python bench/bench_cluster.py
	$(BIN)/python bench/bench_dashboards.py
	$(BIN)/python bench/bench_trading.py

lint: $(STAMP)  ## ruff, and the import contract in pyproject.toml ([tool.importlinter])
	$(BIN)/ruff check workbench tests bench
	$(BIN)/lint-imports --no-cache --no-logo

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) reports/*.ipynb reports/*.html
