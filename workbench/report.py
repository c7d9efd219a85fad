"""Run a parameterised notebook headlessly (papermill) and write an offline HTML report.

Both files are written atomically (a temporary file in the same folder, then a rename),
so a reader never sees a half-written report. A failed run keeps the partially executed
notebook as ``<name>.failed.ipynb`` next to where the report would be, with the error
recorded in it by papermill, and re-raises.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from workbench._fs import atomic_write

__all__ = ["run_notebook", "to_html", "atomic_write"]

# nbconvert's template links MathJax and require.js from a CDN; the reports need neither
# (plotly.js is inlined by the notebook renderer), so drop them to stay fully offline.
_CDN_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)


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
    output: Path,
    parameters: dict[str, Any] | None = None,
    html: bool = True,
    progress: bool = True,
) -> tuple[Path, Path | None]:
    """Execute ``notebook`` with ``parameters`` into ``output`` (and ``.html`` beside it)."""
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".ipynb", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        pm.execute_notebook(
            str(notebook),
            str(tmp),
            parameters=parameters or {},
            progress_bar=progress,
            cwd=str(notebook.parent),
            kernel_name="python3",
        )
    except BaseException:
        if tmp.exists():
            os.replace(tmp, output.with_suffix(".failed.ipynb"))
        raise
    os.replace(tmp, output)
    html_path = to_html(output, output.with_suffix(".html")) if html else None
    return output, html_path
