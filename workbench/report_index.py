"""``reports/index.html``: every runbook's history, failures first, as one offline page.

Regenerated from the ``run.json`` files (the runs' own records, never a separate
database that could drift) after every :func:`workbench.report.run_report` run, and
written atomically, so a reader sees the previous index or the new one. The page needs no
network and no JavaScript: inline CSS, relative links to each run's ``report.html`` and
``report.ipynb``. Parameters and errors are user input and are HTML-escaped. A run folder
without ``run.json`` (a run still going, or killed with SIGKILL) is shown as "unfinished".
Times are UTC; durations are wall-clock seconds of the whole run.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from workbench._fs import atomic_write, remove_stale_temporaries
from workbench.config import reports_dir
from workbench.report import FILE_MODE, ReportRun, folder_started, scan_runs

__all__ = ["write_index", "index_html"]

INDEX_FILE = "index.html"
_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-size:12px}
.ok{color:#17702b;font-weight:600}.failed,.timeout{color:#b00020;font-weight:600}
.unfinished{color:#8a6d00;font-weight:600}.err{color:#b00020}.muted{color:#777}"""


def _row(folder: Path, run: ReportRun | None, root: Path) -> dict[str, Any]:
    """One table row: the run's record, or what the folder alone tells about an unfinished run."""
    rel = folder.relative_to(root)
    if run is None:
        return {"book": rel.parts[0], "status": "unfinished", "started": folder_started(folder),
                "seconds": None, "parameters": {}, "links": [(rel, "folder")],
                "error": "no run.json: the run is still going or was killed", "commit": None}  # fmt: skip
    links = [(rel / p.name, p.suffix.lstrip(".")) for p in (run.html, run.notebook) if p is not None]
    return {"book": rel.parts[0], "status": run.status, "started": run.started, "seconds": run.seconds,
            "parameters": run.parameters, "links": links, "error": run.error, "commit": run.code_commit}  # fmt: skip


def _cells(row: dict[str, Any]) -> str:
    e = html.escape
    started = "?" if pd.isna(row["started"]) else f"{row['started']:%Y-%m-%d %H:%M:%S}"
    seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f} s"
    params = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in row["parameters"].items())
    links = " ".join(f'<a href="{e(quote(str(p)))}">{e(label)}</a>' for p, label in row["links"])
    error = f'<span class="err">{e(row["error"])}</span>' if row["error"] else ""
    commit = f'<code class="muted">{e(row["commit"][:12])}</code>' if row["commit"] else ""
    return (f'<td class="{e(row["status"])}">{e(row["status"])}</td><td>{started}</td><td>{seconds}</td>'
            f"<td><code>{e(params or '(defaults)')}</code></td><td>{links}</td><td>{error}</td><td>{commit}</td>")  # fmt: skip


_HEAD = "<tr><th>status</th><th>started (UTC)</th><th>duration</th><th>parameters</th><th>files</th>" \
        "<th>error</th><th>commit</th></tr>"  # fmt: skip


def _table(rows: list[dict[str, Any]], with_book: bool = False) -> str:
    head = _HEAD.replace("<tr>", "<tr><th>runbook</th>") if with_book else _HEAD
    body = "".join(f"<tr>{'<td>' + html.escape(r['book']) + '</td>' if with_book else ''}{_cells(r)}</tr>"
                   for r in rows)  # fmt: skip
    return f"<table>{head}{body}</table>"


def index_html(root: Path | None = None) -> str:
    """The index page of every run under ``root`` (default: the reports directory)."""
    root = (Path(root) if root is not None else reports_dir()).resolve()
    rows = [_row(folder, run, root) for folder, run in scan_runs(root)]
    rows.sort(key=lambda r: (pd.Timestamp.min.tz_localize("UTC") if pd.isna(r["started"]) else r["started"],
                             r["links"][0][0].as_posix() if r["links"] else ""), reverse=True)  # fmt: skip
    failures = [r for r in rows if r["status"] in ("failed", "timeout")]  # unfinished may be running
    parts = [f"<h1>Reports</h1><p class=\"muted\">{len(rows)} runs, {len(failures)} failed or timed out; "
             f"generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M:%S} UTC.</p>"]  # fmt: skip
    if failures:
        parts.append(f"<h2>Failures</h2>{_table(failures, with_book=True)}")
    for book in sorted({r["book"] for r in rows}):
        history = [r for r in rows if r["book"] == book]
        parts.append(f'<h2 id="{html.escape(book)}">{html.escape(book)}</h2>{_table(history)}')
    if not rows:
        parts.append("<p>No runs yet: <code>workbench run NOTEBOOK</code> or <code>workbench demo</code>.</p>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reports</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def write_index(root: Path | None = None) -> Path:
    """Regenerate ``<root>/index.html`` atomically (mode 0644); returns its path.

    Two runs finishing together each write a complete index; the later rename wins and the
    next run's index includes both.
    """
    root = Path(root) if root is not None else reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    target = root / INDEX_FILE
    atomic_write(target, index_html(root).encode("utf-8"))
    os.chmod(target, FILE_MODE)
    return target
