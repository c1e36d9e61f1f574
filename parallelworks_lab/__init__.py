"""parallelworks-lab: HPC clusters in JupyterLab."""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "parallelworks-lab"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import ParallelWorksLabApp

    return [{"module": "parallelworks_lab", "app": ParallelWorksLabApp}]
