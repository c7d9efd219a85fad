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
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench._fs import (
    atomic_write,
    is_temporary,
    path_inside,
    private_workdir,
    remove_stale_temporaries,
    safe_component,
)
from workbench.config import reports_dir
from workbench.errors import NotebookRunError, ReportPathError, first_line
from workbench.notebook_params import check_parameters, load_notebook

__all__ = ["run_notebook", "to_html", "atomic_write", "report_path", "list_reports", "ReportFile"]

# nbconvert's template links MathJax and require.js from a CDN; the reports need neither
# (plotly.js is inlined by the notebook renderer), so drop them to stay fully offline.
_CDN_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
REPORT_SUFFIXES = (".ipynb", ".html")


def report_path(*components: object, suffix: str = ".ipynb", root: Path | None = None,
                digest: str | None = None) -> Path:  # fmt: skip
    """``<reports>/<c1>_<c2>...<suffix>`` from sanitised components, verified inside ``root``.

    >>> report_path("backtest", "symbol-../../etc/passwd", root=Path("/r")).parent
    PosixPath('/r')
    """
    root = Path(root) if root is not None else reports_dir()
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


def to_html(notebook: Path, html: Path) -> Path:
    """Convert an executed notebook to a self-contained HTML file (no network needed)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
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


@dataclass(frozen=True)
class ReportFile:
    """One report file in the reports directory; ``failed`` for a kept partial run."""

    path: Path
    size: int
    modified: float

    @property
    def failed(self) -> bool:
        return self.path.name.endswith(".failed.ipynb")


def list_reports(root: Path | None = None) -> list[ReportFile]:
    """Reports (``.ipynb``/``.html``, failed runs flagged), newest first; never temporaries.

    Temporaries left by dead runs are removed on the way.
    """
    root = Path(root) if root is not None else reports_dir()
    remove_stale_temporaries(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_file() and p.suffix in REPORT_SUFFIXES and not p.name.startswith(".") and not is_temporary(p):
            st = p.stat()
            found.append(ReportFile(p, st.st_size, st.st_mtime))
    return sorted(found, key=lambda r: (-r.modified, r.path.name))
