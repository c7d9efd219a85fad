"""Run a parameterised notebook headlessly (papermill) and write an offline HTML report.

Every run goes through :func:`run_notebook`, which

- checks the parameters against the notebook's declared ones
  (:func:`workbench.notebook_params.check_parameters`: no code through a name or value);
- keeps every file it writes inside the reports directory (``WORKBENCH_REPORTS_DIR``):
  default names are built from sanitised components (:func:`report_path`) and an explicit
  output is verified to stay inside it;
- executes into a private 0700 work folder (papermill saves after every cell; a reports
  folder swapped for a symlink mid-run cannot redirect that), then publishes each
  finished file atomically (a hidden temporary beside the target, then a rename) after
  re-checking the folder, so a reader never sees a half-written report; temporaries and
  work folders of runs killed with SIGKILL are removed by the next run.

A failed run keeps the partially executed notebook as ``<name>.failed.ipynb`` next to
where the report would be, with the error recorded in it by papermill, and re-raises.

:func:`run_report` is the reporting entry point (``workbench run``, ``demo``, scheduled
jobs): one new folder per run, ``<reports>/<runbook>/<UTC %Y%m%dT%H%M%SZ>-<8 hex>/``,
holding ``report.ipynb``, ``report.html`` (code hidden), the companion files the notebook
wrote to :func:`run_folder` (a tearsheet...), and ``run.json`` (a :class:`ReportRun`),
written last: a folder without it is a run still going or killed. Folders are 0755 and
files 0644 whatever the umask, so a report server or a colleague can read them. A failed
or timed-out run is recorded as such (never raised) and never touches an earlier report;
``<runbook>/latest.json`` names the newest good run, ``index.html`` lists them all
(:mod:`workbench.report_index`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench._fs import (
    atomic_write,
    path_inside,
    private_workdir,
    remove_stale_temporaries,
    safe_component,
)
from workbench.config import notebooks_dir, reports_dir
from workbench.errors import NotebookRunError, ParameterError, ReportPathError, first_line
from workbench.notebook_params import check_parameters, load_notebook

__all__ = ["run_report", "ReportRun", "list_reports", "scan_runs", "run_folder", "run_notebook", "to_html",
           "atomic_write", "report_path"]

# nbconvert's template links MathJax and require.js from a CDN; the reports need neither
# (plotly.js is inlined by the notebook renderer), so drop them to stay fully offline.
_CDN_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)


def report_path(*components: object, suffix: str = ".ipynb", root: Path | None = None,
                digest: str | None = None) -> Path:  # fmt: skip
    """``<root>/<c1>_<c2>...<suffix>`` from sanitised components, verified inside ``root``
    (default :func:`run_folder`: a notebook's companion files land in its own run folder).

    >>> report_path("backtest", "symbol-../../etc/passwd", root=Path("/r")).parent
    PosixPath('/r')
    """
    root = Path(root) if root is not None else run_folder()
    name = "_".join(safe_component(c) for c in components) or "report"
    if digest is not None:  # hex only: appended as is, after the sanitised components
        name += f"~{int(digest, 16):0{len(digest)}x}"
    return path_inside(root, Path(name + suffix))


def output_inside(output: Path, root: Path | None = None) -> Path:
    """An explicit ``-o`` path (relative to the current directory, as a shell user means it):
    a visible ``.ipynb`` file that stays inside the reports directory."""
    root = Path(root) if root is not None else reports_dir()
    output = Path(output)
    if output.suffix != ".ipynb" or output.name.startswith("."):
        raise ReportPathError(
            f"the output is the executed notebook: a visible file ending in .ipynb (the HTML goes "
            f"beside it), got {str(output)!r}"
        )
    return path_inside(root, output.absolute())


def _literal_path(path: Path) -> str:
    """``path`` as papermill must get it: it ``str.format``s paths with the parameters, so
    ``{x}`` in a name would be replaced by a parameter's value (and could leave reports/)."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _still_inside(output: Path, resolved_parent: Path) -> None:
    """Re-check before each write: the folder must not have been swapped for a symlink."""
    if output.parent.resolve() != resolved_parent:
        raise ReportPathError(f"the reports folder {output.parent} changed during the run; refusing to write")


def to_html(notebook: Path, html: Path, *, title: str | None = None, hide_code: bool = True) -> Path:
    """Convert an executed notebook to a self-contained HTML file (no network needed).

    A report is read for its results, so code cells are hidden by default (nbconvert's
    ``--no-input``); ``title`` (escaped by the template) replaces nbconvert's "Notebook".
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=hide_code, exclude_output_prompt=hide_code)
    resources = {"metadata": {"name": title or Path(notebook).stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = _CDN_SCRIPT.sub("", body)
    atomic_write(html, body.encode("utf-8"))
    return html


def run_notebook(
    notebook: Path,
    output: Path | None = None,
    parameters: dict[str, Any] | None = None,
    html: bool = True,
    progress: bool = True,
    *,
    text_parameters: frozenset[str] = frozenset(),
    raw_parameters: frozenset[str] = frozenset(),
) -> tuple[Path, Path | None]:
    """Execute ``notebook`` with checked ``parameters`` into ``output`` (and ``.html`` beside it).

    ``output`` defaults to ``<reports>/<notebook>_<name>-<value>....ipynb``; names in
    ``text_parameters`` hold command-line strings, parsed by their declared type (those in
    ``raw_parameters`` too, but an untyped one keeps its string, as ``-r`` promises).
    """
    import papermill as pm

    notebook = Path(notebook)
    nb = load_notebook(notebook)  # read once: the node checked is the node executed
    params = check_parameters(nb, parameters or {}, from_text=text_parameters, raw_text=raw_parameters)
    output = output_inside(output) if output is not None else default_output(notebook, params)
    output.parent.mkdir(parents=True, exist_ok=True)
    parent = output.parent.resolve()
    remove_stale_temporaries(output.parent)
    with private_workdir() as work:  # papermill saves after every cell: never into reports/
        tmp = work / output.name
        try:
            pm.execute_notebook(nb, _literal_path(tmp), parameters=params, progress_bar=progress,
                                cwd=str(notebook.resolve().parent), kernel_name="python3")  # fmt: skip
        except pm.PapermillExecutionError as exc:
            failed = _keep_failed(tmp, output, parent)
            raise NotebookRunError(exc.ename, first_line(exc.evalue), exc.exec_count, failed) from exc
        except BaseException:
            _keep_failed(tmp, output, parent)
            raise
        _publish(tmp, output, parent)
    html_path = None
    if html:
        _still_inside(output, parent)
        html_path = to_html(output, output.with_suffix(".html"))
    return output, html_path


def _publish(tmp: Path, target: Path, parent: Path) -> Path:
    """Copy a finished file from the private work folder into the (re-checked) reports folder."""
    _still_inside(target, parent)
    atomic_write(target, tmp.read_bytes())
    return target


def _keep_failed(tmp: Path, output: Path, parent: Path) -> Path | None:
    """Publish a partial run as ``<name>.failed.ipynb`` (None if nothing was written)."""
    if tmp.exists() and tmp.stat().st_size:
        return _publish(tmp, output.with_suffix(".failed.ipynb"), parent)
    return None


def default_output(notebook: Path, params: dict[str, Any]) -> Path:
    """The report name of a run: the notebook's stem, each ``name-value`` sorted by name,
    then ``~`` and 8 hex digits of the parameters' canonical JSON, so two different runs
    never share a name (``{"a": "1_b-2"}`` vs ``{"a": 1, "b": 2}``, ``1`` vs ``"1"``)."""
    if not params:
        return report_path(notebook.stem, "defaults")
    canonical = json.dumps(params, sort_keys=True).encode()
    parts = [f"{k}-{v}" for k, v in sorted(params.items())]
    return report_path(notebook.stem, *parts, digest=hashlib.sha256(canonical).hexdigest()[:8])


# ---- one folder per run -------------------------------------------------------------------

RUN_FILE, LATEST_FILE, NOTEBOOK_FILE, HTML_FILE = "run.json", "latest.json", "report.ipynb", "report.html"
STATUSES = ("ok", "failed", "timeout")
FILE_MODE, DIR_MODE = 0o644, 0o755  # readable by a report server and colleagues, whatever the umask
RUN_DIR_ENV = "WORKBENCH_RUN_DIR"  # set for the kernel of a run_report run: where companions go
REPORT_RUN_ENV = "WORKBENCH_REPORT_RUN"  # the run's id, the parent of the backtests its kernel stores
_RUN_ID = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-[0-9a-f]{8}$")
_RESERVED = frozenset({RUN_FILE, NOTEBOOK_FILE, HTML_FILE})


@dataclass(frozen=True)
class ReportRun:
    """The record of one :func:`run_report` run, as stored in its folder's ``run.json``.

    ``status`` is "ok", "failed" (a cell raised, the kernel died or the report could not be
    written) or "timeout" (the cells ran longer than the timeout); ``started`` is UTC and
    ``seconds`` the wall-clock duration of the whole run; ``error`` is one line (None when
    ok); ``notebook``/``html`` are None when the run produced none. In ``run.json`` paths
    are stored relative to the run's folder (the folder relative to the reports root), so
    a moved reports directory still reads back.
    """

    runbook: str
    run_id: str
    folder: Path
    status: str
    started: pd.Timestamp
    seconds: float
    parameters: dict[str, Any]
    notebook: Path | None
    html: Path | None
    error: str | None
    code_commit: str | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(folder=f"{self.runbook}/{self.run_id}", started=self.started.isoformat(),
                   notebook=self.notebook.name if self.notebook else None,
                   html=self.html.name if self.html else None)  # fmt: skip
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> ReportRun:
        """The run stored in ``folder`` (its paths rebuilt from where it was found)."""
        files = {k: folder / data[k] if data.get(k) else None for k in ("notebook", "html")}
        return cls(runbook=str(data["runbook"]), run_id=str(data["run_id"]), folder=folder,
                   status=str(data["status"]), started=pd.Timestamp(data["started"]).tz_convert("UTC"),
                   seconds=float(data["seconds"]), parameters=dict(data.get("parameters") or {}),
                   error=data.get("error"), code_commit=data.get("code_commit"), **files)  # fmt: skip


def run_folder() -> Path:
    """Where a running notebook writes its companion files (tearsheets, CSVs): its own run's
    folder under :func:`run_report` (published with the report), else the reports directory."""
    inside = os.environ.get(RUN_DIR_ENV)
    return Path(inside) if inside else reports_dir()


def resolve_runbook(runbook: str | Path) -> Path:
    """A notebook path, or a bare name looked up in ``notebooks/`` (``backtest`` ->
    ``notebooks/backtest.ipynb``); a missing one is a :class:`ParameterError`."""
    text = str(runbook)
    if isinstance(runbook, str) and "/" not in text and not text.endswith(".ipynb"):
        return notebooks_dir() / f"{text}.ipynb"
    return Path(runbook)


def run_report(
    runbook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    root: Path | None = None,
    text_parameters: frozenset[str] = frozenset(),
    raw_parameters: frozenset[str] = frozenset(),
    progress: bool = False,
) -> ReportRun:
    """Run ``runbook`` with checked ``parameters`` into a new run folder and record the outcome.

    ``timeout`` is the most seconds the notebook's cells may run in total (kernel start
    not counted); None waits for ever. Bad parameters, a bad timeout or a missing notebook
    raise :class:`ParameterError` before any folder exists; a failed or timed-out run is
    returned with its status and error, its partial notebook kept in its folder. The index
    (``index.html``) is regenerated after every run.
    """
    path = resolve_runbook(runbook)
    nb = load_notebook(path)  # read once: the node checked is the node executed
    params = check_parameters(nb, parameters or {}, from_text=text_parameters, raw_text=raw_parameters)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not math.isfinite(timeout) or timeout <= 0):  # fmt: skip
        raise ParameterError(f"run_report: timeout must be a positive number of seconds, got timeout={timeout!r}")
    root = Path(root) if root is not None else reports_dir()
    folder = _new_run_folder(root, path.stem)
    started, t0 = pd.Timestamp.now(tz="UTC"), time.monotonic()
    parent = folder.resolve()
    with private_workdir() as work:
        status, error = _execute(nb, params, work, path, timeout, progress, folder.name)
        notebook, html = None, None
        if (work / NOTEBOOK_FILE).is_file() and (work / NOTEBOOK_FILE).stat().st_size:
            notebook = _publish_file(work / NOTEBOOK_FILE, folder / NOTEBOOK_FILE, parent)
        if notebook is not None:
            try:
                _still_inside(folder / HTML_FILE, parent)
                html = to_html(notebook, folder / HTML_FILE, title=_title(path.stem, params, status))
                os.chmod(html, FILE_MODE)
            except ReportPathError:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded: a report that cannot be shown failed
                status, error = "failed", error or f"HTML conversion: {type(exc).__name__}: {first_line(exc)}"
        _publish_companions(work / "files", folder, parent)
        if status != "ok" and (work / "kernel.log").is_file() and (work / "kernel.log").stat().st_size:
            _publish_file(work / "kernel.log", folder / "kernel.log", parent)
    run = ReportRun(runbook=path.stem, run_id=folder.name, folder=folder, status=status, started=started,
                    seconds=round(time.monotonic() - t0, 3), parameters=params, notebook=notebook, html=html,
                    error=error, code_commit=_code_commit())  # fmt: skip
    _write_json(folder / RUN_FILE, run.to_json(), parent)  # last: its presence means "finished"
    _record(run)
    if run.ok:
        latest = {"run_id": run.run_id, "folder": run.run_id, "html": f"{run.run_id}/{HTML_FILE}",
                  "started": run.started.isoformat()}  # fmt: skip
        _write_json(folder.parent / LATEST_FILE, latest, folder.parent.resolve())
    from workbench.report_index import write_index

    write_index(root)
    return run


def _record(run: ReportRun) -> None:
    """Keep the run in the experiment store too (kind ``report``); a store that cannot be
    written is a warning, not a lost report (the folder and run.json are already there)."""
    import warnings

    from workbench.api import default_store

    try:
        store = default_store()
        if store is not None and hasattr(store, "save_report"):
            store.save_report(run_id=run.run_id, runbook=run.runbook, status=run.status, started=run.started,
                              seconds=run.seconds, parameters=run.parameters, folder=str(run.folder),
                              error=run.error)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - reported, never fatal after the run is on disk
        warnings.warn(f"the report run {run.run_id} is not in the experiment store: {first_line(exc)}", stacklevel=2)


def _new_run_folder(root: Path, stem: str) -> Path:
    """Create ``<root>/<stem>/<UTC stamp>-<8 random hex>`` (0755); a name taken by a
    concurrent run (same second, same draw) is redrawn, never shared."""
    book = path_inside(root, Path(safe_component(stem)))
    for made in (root, book):
        if not made.is_dir():
            made.mkdir(parents=True, exist_ok=True)
            os.chmod(made, DIR_MODE)
    remove_stale_temporaries(book)
    while True:
        folder = book / f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)
        return folder


def _execute(nb: Any, params: dict[str, Any], work: Path, path: Path, timeout: float | None,
             progress: bool, run_id: str = "") -> tuple[str, str | None]:  # fmt: skip
    """Run the notebook into ``work``; (status, one-line error). papermill marks the cells of
    a timed-out run "completed", so the outcome is read from the exception type instead."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    (work / "files").mkdir()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with open(work / "kernel.log", "ab") as log:
            pm.execute_notebook(nb, _literal_path(work / NOTEBOOK_FILE), parameters=params, progress_bar=progress,
                                cwd=str(path.resolve().parent), kernel_name="python3",
                                kernel_manager_class=_kernel_manager({RUN_DIR_ENV: str(work / "files"),
                                                                      REPORT_RUN_ENV: run_id}, log),
                                timeout_func=None if deadline is None else
                                (lambda cell: max(deadline - time.monotonic(), 0.001)))  # fmt: skip
    except pm.PapermillExecutionError as exc:
        cell = f" in cell {exc.exec_count}" if exc.exec_count is not None else ""
        return "failed", f"{exc.ename}: {first_line(exc.evalue)}{cell}"
    except CellTimeoutError:
        return "timeout", f"timeout: the cells ran longer than timeout={timeout:g} s; the run was stopped"
    except DeadKernelError as exc:
        return "failed", f"DeadKernelError: the kernel died ({first_line(exc, 'no message')})"
    except Exception as exc:  # noqa: BLE001 - recorded as the run's failure, not raised
        return "failed", f"{type(exc).__name__}: {first_line(exc, repr(exc))}"
    return "ok", None


def _kernel_manager(env: dict[str, str], log: Any) -> type:
    """A kernel manager class that starts the kernel with ``env`` added and its own stderr
    (the kernel's log, noisy when a timeout kills it) in ``log``: per run, so concurrent
    runs in one process never share ``os.environ``."""
    from jupyter_client import AsyncKernelManager

    class _RunKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            kw.setdefault("stderr", log)
            return await super()._async_pre_start_kernel(**kw)

    return _RunKernelManager


def _title(stem: str, params: dict[str, Any], status: str) -> str:
    """The HTML ``<title>``: runbook, the parameters set for this run, and a failure mark."""
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    title = f"{stem} — {shown}" if shown else f"{stem} (defaults)"
    title = title if len(title) <= 120 else title[:119] + "…"
    return title if status == "ok" else f"{title} [{status.upper()}]"


def _publish_file(source: Path, target: Path, parent: Path) -> Path:
    """Publish a finished file atomically into the re-checked run folder, mode 0644."""
    _publish(source, target, parent)
    os.chmod(target, FILE_MODE)
    return target


def _publish_companions(files: Path, folder: Path, parent: Path) -> None:
    """Publish the regular, visible files the notebook wrote to :func:`run_folder`
    (never a symlink, a subfolder or one of the run's own file names)."""
    if not files.is_dir():
        return
    for f in sorted(files.iterdir()):
        if f.is_file() and not f.is_symlink() and not f.name.startswith(".") and f.name not in _RESERVED:
            _publish_file(f, folder / f.name, parent)


def _write_json(target: Path, data: dict[str, Any], parent: Path) -> None:
    _still_inside(target, parent)
    atomic_write(target, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())
    os.chmod(target, FILE_MODE)


def _code_commit() -> str | None:
    """The git commit of the running code (``+dirty`` when uncommitted changes), None outside git."""
    from workbench.adapters.experiments import code_version

    commit, dirty, _ = code_version()
    return (commit + ("+dirty" if dirty else "")) if commit else None


def read_run(folder: Path) -> ReportRun | None:
    """The run recorded in ``folder``, or None when it has no readable ``run.json`` (the run
    is still going, or was killed before it finished)."""
    try:
        return ReportRun.from_json(json.loads((folder / RUN_FILE).read_text()), folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scan_runs(root: Path | None = None) -> Iterator[tuple[Path, ReportRun | None]]:
    """Every run folder under ``root`` with its record (None: unfinished), in no order."""
    root = Path(root) if root is not None else reports_dir()
    if not root.is_dir():
        return
    for book in root.iterdir():
        if book.is_dir() and not book.is_symlink() and not book.name.startswith("."):
            for folder in book.iterdir():
                if folder.is_dir() and not folder.is_symlink() and _RUN_ID.match(folder.name):
                    yield folder, read_run(folder)


def folder_started(folder: Path) -> pd.Timestamp:
    """The UTC start time encoded in a run folder's name."""
    match = _RUN_ID.match(folder.name)
    return pd.to_datetime(match["stamp"], format="%Y%m%dT%H%M%SZ", utc=True) if match else pd.NaT


def list_reports(root: Path | None = None) -> list[ReportRun]:
    """The finished runs (every status) under ``root``, newest first; unfinished ones are
    :func:`scan_runs`'s ``None`` records and not listed here."""
    runs = [run for _, run in scan_runs(root) if run is not None]
    return sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)
