"""Paths and settings, from the environment with project-relative defaults.

``WORKBENCH_DATA_DIR``     where ``sample/`` (offline prices) lives; default ``<repo>/data``
``WORKBENCH_REPORTS_DIR``  where runbooks write reports; default ``<repo>/reports``
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "data_dir", "sample_dir", "reports_dir", "notebooks_dir"]


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
