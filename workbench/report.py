"""Run a parameterised notebook headlessly (papermill) and write an offline HTML report.

Every run goes through :func:`run_notebook`, which

- checks the parameters against the notebook's declared ones
  (:func:`workbench.notebook_params.check_parameters`: no code through a name or value);
- keeps every file it writes inside the reports directory (``WORKBENCH_REPORTS_DIR``):
  default names are built from sanitised components (:func:`report_path`) and an explicit
  output is verified to stay inside it;
- writes both files atomically (a hidden temporary beside the target, then a rename), so
  a reader never sees a half-written report, and first removes temporaries that runs
  killed with SIGKILL left behind.

A failed run keeps the partially executed notebook as ``<name>.failed.ipynb`` next to
where the report would be, with the error recorded in it by papermill, and re-raises.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench._fs import (
    atomic_write,
    is_temporary,
    path_inside,
    remove_stale_temporaries,
    safe_component,
    temporary_path,
)
from workbench.config import reports_dir
from workbench.errors import NotebookRunError, ReportPathError
from workbench.notebook_params import check_parameters, load_notebook

__all__ = ["run_notebook", "to_html", "atomic_write", "report_path", "list_reports", "ReportFile"]

# nbconvert's template links MathJax and require.js from a CDN; the reports need neither
# (plotly.js is inlined by the notebook renderer), so drop them to stay fully offline.
_CDN_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
REPORT_SUFFIXES = (".ipynb", ".html")


def report_path(*components: object, suffix: str = ".ipynb", root: Path | None = None) -> Path:
    """``<reports>/<c1>_<c2>...<suffix>`` from sanitised components, verified inside ``root``.

    >>> report_path("backtest", "symbol-../../etc/passwd", root=Path("/r")).parent
    PosixPath('/r')
    """
    root = Path(root) if root is not None else reports_dir()
    name = "_".join(safe_component(c) for c in components) or "report"
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
) -> tuple[Path, Path | None]:
    """Execute ``notebook`` with checked ``parameters`` into ``output`` (and ``.html`` beside it).

    ``output`` defaults to ``<reports>/<notebook>_<name>-<value>....ipynb``; names in
    ``text_parameters`` hold command-line strings, parsed by their declared type.
    """
    import papermill as pm

    notebook = Path(notebook)
    nb = load_notebook(notebook)  # read once: the node checked is the node executed
    params = check_parameters(nb, parameters or {}, from_text=text_parameters)
    output = output_inside(output) if output is not None else default_output(notebook, params)
    output.parent.mkdir(parents=True, exist_ok=True)
    parent = output.parent.resolve()
    remove_stale_temporaries(output.parent)
    tmp = temporary_path(output, suffix=".tmp.ipynb")  # papermill wants an .ipynb name
    try:
        pm.execute_notebook(nb, _literal_path(tmp), parameters=params, progress_bar=progress,
                            cwd=str(notebook.resolve().parent), kernel_name="python3")  # fmt: skip
    except pm.PapermillExecutionError as exc:
        failed = _keep_failed(tmp, output)
        raise NotebookRunError(exc.ename, _first_line(exc.evalue), exc.exec_count, failed) from exc
    except BaseException:
        _keep_failed(tmp, output)
        raise
    _still_inside(output, parent)
    os.replace(tmp, output)
    html_path = to_html(output, output.with_suffix(".html")) if html else None
    return output, html_path


def _keep_failed(tmp: Path, output: Path) -> Path | None:
    """Move a partial run aside as ``<name>.failed.ipynb`` (None if nothing was written)."""
    if tmp.exists() and tmp.stat().st_size:
        failed = output.with_suffix(".failed.ipynb")
        os.replace(tmp, failed)
        return failed
    tmp.unlink(missing_ok=True)
    return None


def _first_line(text: object) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def default_output(notebook: Path, params: dict[str, Any]) -> Path:
    """The report name of a run: the notebook's stem, then each ``name-value`` sorted by name."""
    parts = [f"{k}-{v}" for k, v in sorted(params.items())] or ["defaults"]
    return report_path(notebook.stem, *parts)


@dataclass(frozen=True)
class ReportFile:
    """One finished report file in the reports directory."""

    path: Path
    size: int
    modified: float


def list_reports(root: Path | None = None) -> list[ReportFile]:
    """Finished reports (``.ipynb``/``.html``), newest first; temporaries are never listed.

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
