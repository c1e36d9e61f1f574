"""parallelworks-lab: HPC clusters in JupyterLab."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("parallelworks-lab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0.dev0"

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "parallelworks-lab"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import ParallelWorksLabApp

    return [{"module": "parallelworks_lab", "app": ParallelWorksLabApp}]
