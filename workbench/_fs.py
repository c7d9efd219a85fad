"""Crash-safe file writes and safe file names, shared by the report writer and the cache.

Temporary files are named ``.<target>.<pid>.<random>.tmp`` (``.tmp.ipynb`` for notebooks; hidden, in the target's own
folder so the final rename is atomic). A run killed with SIGKILL cannot remove its
temporary; :func:`remove_stale_temporaries` removes those whose writer process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import ReportPathError

__all__ = [
    "atomic_write",
    "private_workdir",
    "remove_stale_workdirs",
    "temporary_path",
    "is_temporary",
    "remove_stale_temporaries",
    "safe_component",
    "path_inside",
]

_TMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp(\.ipynb)?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+|\.{2,}")
STALE_AFTER_S = 24 * 3600  # a temporary whose pid is alive but older than this is orphaned too


def temporary_path(target: Path, suffix: str = ".tmp") -> Path:
    """A new, empty, hidden temporary file beside ``target`` that names this process."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix, dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual mode
    os.close(fd)
    return Path(tmp)


def _read_umask() -> int:
    """The process umask (only readable by setting it: done once, at import, not per write)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def is_temporary(path: Path) -> bool:
    """True for a file :func:`temporary_path` made (never a report)."""
    return _TMP.match(path.name) is not None


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(folder: Path, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete temporaries in ``folder`` left by dead writers (or older than ``older_than_s``)."""
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.iterdir():
        m = _TMP.match(path.name)
        if m is None or not path.is_file():
            continue
        try:
            dead = not _writer_alive(int(m["pid"])) or now - path.stat().st_mtime > older_than_s
            if dead and int(m["pid"]) != os.getpid():
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another cleaner got there first
            continue
    return removed


_WORKDIR = re.compile(r"^workbench-run-(?P<pid>\d+)-[^/]+$")


@contextlib.contextmanager
def private_workdir() -> Iterator[Path]:
    """A fresh 0700 folder in the system temp dir, removed on exit (killed: see below).

    Work in progress (papermill saves its output after every cell) goes here, not into a
    folder other users or processes may write to, so nothing can redirect it mid-run; only
    the finished file is published. A run killed with SIGKILL leaves the folder behind;
    :func:`remove_stale_workdirs` removes those whose process is gone.
    """
    remove_stale_workdirs()
    work = Path(tempfile.mkdtemp(prefix=f"workbench-run-{os.getpid()}-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_workdirs(root: Path | None = None) -> list[Path]:
    """Delete the private work folders of dead runs in ``root`` (the system temp dir)."""
    root = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed = []
    for path in root.glob("workbench-run-*"):
        m = _WORKDIR.match(path.name)
        if m and path.is_dir() and not path.is_symlink() and not _writer_alive(int(m["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def safe_component(value: object, *, max_len: int = 60) -> str:
    """``value`` as one safe file-name component: ``[A-Za-z0-9._-]`` only, no leading dot.

    Anything changed on the way gets a short hash of the original appended, so two
    different values never share a name (``BTC/USDT`` and ``BTC_USDT`` stay apart).
    """
    text = str(value)
    safe = _UNSAFE.sub("-", text).lstrip(".-")[:max_len] or "x"
    if safe != text:
        safe = f"{safe}~{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return safe


def path_inside(root: Path, path: Path) -> Path:
    """``path`` resolved, or :class:`ReportPathError` if it is not inside ``root``."""
    root_r = Path(root).resolve()
    target = (root_r / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if target == root_r or not target.is_relative_to(root_r):
        raise ReportPathError(
            f"report paths must stay inside the reports directory {root_r} "
            f"(WORKBENCH_REPORTS_DIR), got {str(path)!r}"
        )
    return target


def atomic_write(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file in the same directory, are fsync'ed, and the file is
    renamed over ``path`` (``os.replace`` is atomic on POSIX); the directory is then fsync'ed
    so the rename survives a power cut. Any failure removes the temporary file and leaves
    ``path`` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
