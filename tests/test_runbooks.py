"""The research runbooks: their parameter texts, their validation, and the jupytext pairs."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest

import workbench as wb
from workbench.runbook import (
    OptimizeParams,
    PortfolioParams,
    RiskParams,
    parse_params,
    parse_sleeves,
    parse_space,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RUNBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", RUNBOOKS, ids=[p.name for p in RUNBOOKS])
def test_every_notebook_is_paired_with_its_percent_script_and_in_sync(path: Path) -> None:
    script = path.with_suffix(".py")
    assert script.exists(), f"{path.name} has no jupytext pair {script.name}"
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    text = jupytext.read(script)
    assert [(c.cell_type, c.source.rstrip()) for c in nb.cells] == [(c.cell_type, c.source.rstrip()) for c in text.cells], (
        f"{path.name} and {script.name} differ: run `jupytext --sync {path}`")  # fmt: skip
    if not path.name.startswith("dashboard"):  # a runbook: its first code cell holds the parameters
        assert "parameters" in nb.cells[[c.cell_type for c in nb.cells].index("code")].metadata.get("tags", [])


@pytest.mark.parametrize("path", [p for p in RUNBOOKS if not p.name.startswith("dashboard")],
                         ids=[p.name for p in RUNBOOKS if not p.name.startswith("dashboard")])
def test_papermill_sees_every_declared_parameter(path: Path) -> None:
    """A default holding "=" makes papermill skip the line: the parameter would vanish."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    declared = [line.split(":")[0].split("=")[0].strip() for line in cell.source.splitlines()
                if line.strip() and not line.startswith("#")]  # fmt: skip
    assert list(pm.inspect_notebook(str(path))) == declared


def test_parameter_texts_parse() -> None:
    assert parse_params("fast: 10, slow=30, allow_short: True, name: abc") == {
        "fast": 10, "slow": 30, "allow_short": True, "name": "abc"}  # fmt: skip
    assert parse_space("fast: 5..20 step 5; slow: 50, 100; flag: True, False") == {
        "fast": [5, 10, 15, 20], "slow": [50, 100], "flag": [True, False]}  # fmt: skip
    assert parse_space("n: 3..5") == {"n": [3, 4, 5]}
    (a, b) = parse_sleeves("trend: sma_crossover(fast: 20, slow: 100) @ SPX; rot: xs_momentum(top_k: 1) @ goog+IXIC")
    assert a.strategy == wb.strategies.SMACrossover(fast=20, slow=100) and a.symbols == ("SPX",)
    assert b.strategy.top_k == 1 and b.symbols == ("GOOG", "IXIC")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: parse_params("fast 10"), "params entries are name: value"),
    (lambda: parse_space("fast: 10..5"), "a range is lo..hi"),
    (lambda: parse_space("fast: 1..9 step 0"), "a range is lo..hi"),
    (lambda: parse_space(""), "space must name at least one parameter"),
    (lambda: parse_sleeves("trend: sma_crossover"), "a sleeve is name: strategy"),
    (lambda: parse_sleeves("trend: sma_crossover(fast: 20 @ SPX"), "unclosed parameters"),
    (lambda: parse_sleeves("t: sma_crossover(fast: 50, slow: 20) @ SPX"), "fast must be"),
    (lambda: OptimizeParams(strategy="nope"), "strategy must be one of"),
    (lambda: OptimizeParams(objective="luck"), "objective must be one of"),
    (lambda: OptimizeParams(symbol="XYZ"), "symbol must be one of"),
    (lambda: PortfolioParams(allocation="kelly"), "allocation must be one of"),
    (lambda: PortfolioParams(sleeves="t: sma_crossover @ XYZ").symbols, "sleeve symbol must be one of"),
    (lambda: RiskParams(confidence=99.0), "confidence must be in"),
    (lambda: RiskParams(params="fast: 50, slow: 20"), "fast must be"),
])  # fmt: skip
def test_bad_runbook_parameters_are_named(make, message: str) -> None:
    with pytest.raises(wb.ParameterError, match=message):
        make()


def test_portfolio_rebalance_text_is_bars_or_a_calendar_alias() -> None:
    assert PortfolioParams(rebalance="21").book.rebalance == 21
    assert PortfolioParams(rebalance="QS").book.rebalance == "QS"
    with pytest.raises(wb.ParameterError, match="positive pandas offset"):
        PortfolioParams(rebalance="monthly")
