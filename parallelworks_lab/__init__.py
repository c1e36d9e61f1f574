"""parallelworks-lab: HPC clusters in JupyterLab."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily below: the server extension must not pull in httpx & co.
    from IPython.core.interactiveshell import InteractiveShell

    from .client import Client, Job
    from .widgets import JobMonitor, JobTable, ResourceForm

try:
    __version__ = version("parallelworks-lab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0.dev0"

__all__ = [
    "Client",
    "Job",
    "JobMonitor",
    "JobTable",
    "ResourceForm",
    "__version__",
    "load_ipython_extension",
]

_LAZY = {
    "Client": "client",
    "Job": "client",
    "JobMonitor": "widgets",
    "JobTable": "widgets",
    "ResourceForm": "widgets",
}


def __getattr__(name: str) -> Any:
    """The kernel-side client and widgets are imported on first use."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext parallelworks_lab``: the ``%pw`` / ``%%pw`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "parallelworks-lab"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import ParallelWorksLabApp

    return [{"module": "parallelworks_lab", "app": ParallelWorksLabApp}]
