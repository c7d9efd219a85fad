"""Paths and settings, from the environment with project-relative defaults.

``WORKBENCH_DATA_DIR``     where ``sample/`` (offline prices) lives; default ``<repo>/data``
``WORKBENCH_REPORTS_DIR``  where runbooks write reports; default ``<repo>/reports``
``WORKBENCH_CACHE_DIR``    the Parquet price cache; default ``<data>/cache``
``WORKBENCH_OFFLINE``      ``1`` = never touch the network; online sources serve from the cache
``WORKBENCH_STORE``        the experiment store (SQLite file); default ``<data>/experiments.sqlite``;
                           ``off`` = keep no runs
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "data_dir", "sample_dir", "reports_dir", "notebooks_dir", "cache_dir", "offline",
           "store_path", "read_yaml"]


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_DATA_DIR", project_root() / "data"))


def sample_dir() -> Path:
    return data_dir() / "sample"


def reports_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_REPORTS_DIR", project_root() / "reports"))


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def cache_dir() -> Path:
    """Root of the Parquet price cache: ``WORKBENCH_CACHE_DIR``, default ``<data>/cache``."""
    return Path(os.environ.get("WORKBENCH_CACHE_DIR", data_dir() / "cache"))


def offline() -> bool:
    """``WORKBENCH_OFFLINE=1`` serves online sources from the cache only (no network)."""
    return os.environ.get("WORKBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def store_path() -> Path | None:
    """The experiment store's file: ``WORKBENCH_STORE``, default ``<data>/experiments.sqlite``;
    None when set to ``off`` (or ``none``, ``0``): backtests then keep nothing."""
    value = os.environ.get("WORKBENCH_STORE", "").strip()
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return Path(value).expanduser() if value else data_dir() / "experiments.sqlite"


def read_yaml(path: str | Path, what: str) -> object:
    """The document in the YAML file ``path``. An unreadable file or invalid YAML is a
    one-line :class:`~workbench.errors.ParameterError` starting ``<what> <path>:`` (with the
    line of the problem), never a parser traceback."""
    import yaml

    from workbench.errors import ParameterError, first_line

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ParameterError(f"{what} {path}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ParameterError(f"{what} {path}: not valid YAML{where}: {first_line(getattr(e, 'problem', e))}") from None
