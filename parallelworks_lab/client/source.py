"""Where a submission comes from, when it comes from a notebook: the notebook's path and the
id of the cell being run. The server records both as the job's provenance (with the git
commit, modules and user it finds itself); a plain script or terminal IPython sends neither.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from ..models import JobSource

SESSION_ENV = "JPY_SESSION_NAME"  # jupyter_server sets it for a notebook's kernel
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def notebook_path(
    environ: Optional[Mapping[str, str]] = None, root_dir: Optional[str] = None
) -> Optional[str]:
    """The notebook this kernel runs for (``JPY_SESSION_NAME``), relative to the server's
    root when it is under it (JupyterLab's own paths), else as the server gave it."""
    value = (environ if environ is not None else os.environ).get(SESSION_ENV, "").strip()
    if not value or len(value) > 4096 or _CONTROL.search(value):
        return None
    if root_dir and os.path.isabs(value):
        try:
            return Path(value).resolve().relative_to(Path(root_dir).resolve()).as_posix()
        except (ValueError, OSError):
            return value
    return value


def parent_header(shell: Any = None) -> Optional[Mapping[str, Any]]:
    """The request the kernel is running now (ipykernel >= 6 ``get_parent()``); None outside a
    kernel (plain IPython, a script)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if not callable(get_parent):
        return None
    try:
        parent = get_parent()
    except Exception:  # a kernel without a current request: no cell to name
        return None
    return parent if isinstance(parent, Mapping) else None


def cell_id(parent: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The cell id JupyterLab (and Notebook 7) put in an execute request's metadata."""
    if not parent:
        return None
    metadata = parent.get("metadata")
    value = metadata.get("cellId") if isinstance(metadata, Mapping) else None
    if not isinstance(value, str) or not value or len(value) > 256 or _CONTROL.search(value):
        return None
    return value


def submission_source(
    root_dir: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    parent: Optional[Mapping[str, Any]] = None,
    shell: Any = None,
) -> Optional[JobSource]:
    """The ``source`` of a submission made here, or None when there is nothing to say."""
    path = notebook_path(environ, root_dir)
    cell = cell_id(parent if parent is not None else parent_header(shell))
    if path is None and cell is None:
        return None
    return JobSource(notebook_path=path, cell_id=cell)
