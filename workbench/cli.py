"""``workbench`` command line: demo, run a runbook, serve the dashboard, list the sample.

    workbench demo                       run the backtest runbook on GOOG into reports/
    workbench run NOTEBOOK -p fast 20 -r symbol SPX [-o OUT]
    workbench dashboard [--port 8866]    serve notebooks/dashboard.ipynb with Voila on 127.0.0.1
    workbench symbols                    list the offline sample

``-p NAME VALUE`` parses VALUE as YAML like papermill (``-p fast 20`` is an int);
``-r NAME VALUE`` keeps it a raw string (``-r symbol 0050``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from workbench.config import notebooks_dir, reports_dir

__all__ = ["main"]


def _parse_value(raw: str) -> object:
    import yaml

    return yaml.safe_load(raw)


def _params(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in args.param or []:
        out[name] = _parse_value(value)
    for name, value in args.raw or []:
        out[name] = value
    return out


def _run(notebook: Path, params: dict[str, object], output: Path | None) -> int:
    from workbench.report import run_notebook

    if output is None:
        suffix = "_".join(f"{k}-{v}" for k, v in sorted(params.items())) or "defaults"
        output = reports_dir() / f"{notebook.stem}_{suffix}.ipynb"
    t0 = time.perf_counter()
    nb, html = run_notebook(notebook, output, params)
    print(f"executed notebook: {nb}")
    print(f"HTML report:       {html}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the backtest runbook on the sample into reports/")
    demo.add_argument("-o", "--output", type=Path, default=None)

    run = sub.add_parser("run", help="execute a parameterised notebook with papermill")
    run.add_argument("notebook", type=Path)
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"))
    run.add_argument("-r", "--raw", nargs=2, action="append", metavar=("NAME", "VALUE"))
    run.add_argument("-o", "--output", type=Path, default=None)

    dash = sub.add_parser("dashboard", help="serve the Voila dashboard on 127.0.0.1")
    dash.add_argument("--port", type=int, default=8866)
    dash.add_argument("--notebook", type=Path, default=notebooks_dir() / "dashboard.ipynb")

    sub.add_parser("symbols", help="list the offline sample symbols")

    args = parser.parse_args(argv)
    if args.command == "demo":
        output = args.output or reports_dir() / "backtest_GOOG.ipynb"
        return _run(notebooks_dir() / "backtest.ipynb", {"symbol": "GOOG", "fast": 10, "slow": 30}, output)
    if args.command == "run":
        return _run(args.notebook, _params(args), args.output)
    if args.command == "dashboard":
        cmd = [
            sys.executable, "-m", "voila", str(args.notebook), "--no-browser",
            f"--port={args.port}", "--Voila.ip=127.0.0.1",
        ]  # fmt: skip
        print(f"serving {args.notebook.name} on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)")
        return subprocess.call(cmd)
    if args.command == "symbols":
        from workbench.data import sample_manifest

        for sym, meta in sorted(sample_manifest()["instruments"].items()):
            print(f"{sym:8s} {meta['timeframe']:3s} {meta['start'][:10]} .. {meta['end'][:10]}  {meta['name']}")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
