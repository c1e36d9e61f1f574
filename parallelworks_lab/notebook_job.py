"""Notebooks run as jobs: parameter injection, the batch script, and the runner itself.

This module is deliberately standalone (standard library only at import time; ``nbformat`` and
``nbclient`` are imported when a notebook is actually executed): the client embeds its source
in the batch script, so the cluster needs ``nbclient`` and ``ipykernel`` in the cluster's
``python`` but not this package.

On the cluster the script runs ``python notebook_job.py INPUT --parameters FILE``, which
executes the notebook with the parameters injected as a new cell (tagged
``injected-parameters``: first in the notebook, or right after a cell tagged ``parameters`` so
that it overrides the defaults there, as papermill does) and writes the executed copy beside
the input as ``<name>.<jobid>.ipynb``. ``<jobid>`` is the scheduler's id of the job (the
``native_id`` of the API), so the client knows the output's name as soon as the job is queued.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import keyword
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
METADATA_KEY = "parallelworks_lab"
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")

# Parameter values must round-trip through JSON and ``repr`` into Python source.
_SCALARS = (str, int, float, bool, type(None))


# -- shared with the client ---------------------------------------------------------------


def safe_id(job_id: str) -> str:
    """A job id as it appears in a file name (anything unusual becomes ``_``)."""
    return _UNSAFE_ID_CHARS.sub("_", job_id) or "job"


def output_path(notebook: str, job_id: str) -> str:
    """Where the executed copy of ``notebook`` goes for job ``job_id``: beside the input."""
    path = Path(notebook)
    return str(path.with_name(f"{path.stem}.{safe_id(job_id)}.ipynb"))


def check_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a JSON-able dict; raises ValueError naming the offending parameter."""
    checked: dict[str, Any] = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
        _check_value(name, value)
        checked[name] = value
    return checked


def _check_value(name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter '{name}': {value} cannot be written as a literal")
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(name, item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"parameter '{name}': dict keys must be strings")
            _check_value(name, item)
        return
    raise ValueError(
        f"parameter '{name}': {type(value).__name__} is not supported "
        "(use str, int, float, bool, None, or lists/dicts of them)"
    )


def parameters_source(parameters: Mapping[str, Any]) -> str:
    """The code of the injected cell: one ``name = literal`` line per parameter."""
    lines = ["# Parameters injected by parallelworks-lab"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def heredoc(target: str, content: str) -> str:
    """Shell lines that write ``content`` verbatim to the file ``target`` (a shell word).

    The delimiter is quoted (no expansion inside) and checked not to occur in the content, so
    nothing in ``content`` is ever interpreted by the shell. It is derived from the content
    (not random), so the same cell gives the same script: what resource suggestions use to
    recognise earlier runs of it.
    """
    digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
    delimiter = f"PWLAB_EOF_{digest[:16]}"
    while delimiter in content:  # a cell quoting its own delimiter: derive another one
        digest = hashlib.sha256(digest.encode()).hexdigest()
        delimiter = f"PWLAB_EOF_{digest[:16]}"
    if not content.endswith("\n"):
        content += "\n"
    return f"cat >{target} <<'{delimiter}'\n{content}{delimiter}\n"


def interpreter_words(python: str) -> str:
    """The cluster's interpreter setting as shell words, each one quoted."""
    words = shlex.split(python)
    if not words:
        raise ValueError("the cluster's python interpreter setting is empty")
    return " ".join(shlex.quote(word) for word in words)


SCRIPT_HEAD = """#!/bin/bash
pwlab_tmp=$(mktemp -d "${TMPDIR:-/tmp}/pwlab.XXXXXXXX") || exit 1
trap 'rm -rf -- "$pwlab_tmp"' EXIT
"""


def notebook_script(
    python: str,
    notebook: str,
    parameters: Mapping[str, Any],
    kernel: Optional[str] = None,
) -> str:
    """The batch script that runs ``notebook`` (an absolute path) on the cluster."""
    params = check_parameters(parameters)
    argv = [
        interpreter_words(python),
        '"$pwlab_tmp/notebook_job.py"',
        shlex.quote(notebook),
        "--parameters",
        '"$pwlab_tmp/parameters.json"',
    ]
    if kernel:
        argv += ["--kernel", shlex.quote(kernel)]
    return (
        SCRIPT_HEAD
        + heredoc('"$pwlab_tmp/notebook_job.py"', Path(__file__).read_text(encoding="utf-8"))
        + heredoc('"$pwlab_tmp/parameters.json"', json.dumps(params))
        + " ".join(argv)
        + "\n"
    )


# -- the runner (on the cluster) ----------------------------------------------------------


def job_id_from_env(environ: Optional[Mapping[str, str]] = None) -> str:
    """The scheduler's id of the running job, as the API's ``native_id`` spells it."""
    env = os.environ if environ is None else environ
    array_job, array_task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"{array_job}_{array_task}"
    for name in ("SLURM_JOB_ID", "PWLAB_JOB_ID", "PBS_JOBID", "LSB_JOBID"):
        if env.get(name):
            return env[name]
    if env.get("JOB_ID"):  # Grid Engine
        task = env.get("SGE_TASK_ID")
        return f"{env['JOB_ID']}.{task}" if task and task != "undefined" else env["JOB_ID"]
    return f"pid{os.getpid()}"


def inject_parameters(nb: Any, parameters: Mapping[str, Any]) -> int:
    """Insert the parameters cell into ``nb`` (an nbformat v4 notebook); return its index.

    It goes first, or right after the first cell tagged ``parameters`` (whose values are the
    defaults it overrides). An earlier injected cell (re-running an executed copy) is replaced.
    """
    import nbformat

    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
        source=parameters_source(parameters), metadata={"tags": [INJECTED_TAG]}
    )
    index = 0
    for i, existing in enumerate(cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            index = i + 1
            break
    cells.insert(index, cell)
    nb.cells = cells
    return index


def _write_atomically(nb: Any, path: Path, info: Optional[Mapping[str, Any]] = None) -> None:
    import nbformat

    if info is not None:
        nb.metadata[METADATA_KEY] = dict(info)  # stored as a copy: set it on every write
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    nbformat.write(nb, str(tmp))  # type: ignore[no-untyped-call]
    os.replace(tmp, path)


def run(notebook: str, parameters: Mapping[str, Any], kernel: Optional[str] = None) -> int:
    """Execute ``notebook`` with ``parameters``; write the executed copy; return an exit code."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source = Path(notebook)
    job_id = job_id_from_env()
    target = Path(output_path(str(source), job_id))
    nb = nbformat.read(str(source), as_version=4)  # type: ignore[no-untyped-call]
    inject_parameters(nb, check_parameters(parameters))
    info: dict[str, Any] = {
        "input": str(source),
        "job_id": job_id,
        "parameters": dict(parameters),
        "status": "running",
        "started_at": time.time(),
    }
    _write_atomically(nb, target, info)
    print(f"parallelworks-lab: executing {source} -> {target}", flush=True)

    total = len(nb.cells)
    last_write = [time.monotonic()]

    def on_cell_executed(cell: Any, cell_index: int, **_: Any) -> None:
        print(f"parallelworks-lab: cell {cell_index + 1}/{total} done", flush=True)
        # Save progress now and then, so a long run can be looked at while it goes.
        if time.monotonic() - last_write[0] > 2.0:
            _write_atomically(nb, target, info)
            last_write[0] = time.monotonic()

    client = NotebookClient(
        nb,
        kernel_name=kernel or "",
        resources={"metadata": {"path": str(source.parent)}},
        on_cell_executed=on_cell_executed,
    )
    code = 0
    try:
        client.execute()
        info["status"] = "completed"
    except CellExecutionError as exc:
        info["status"] = "failed"
        print(f"parallelworks-lab: a cell failed:\n{exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception as exc:  # kernel did not start, and the like: still write what we have
        info["status"] = "failed"
        print(f"parallelworks-lab: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    info["ended_at"] = time.time()
    _write_atomically(client.nb, target, info)
    print(f"parallelworks-lab: wrote {target} ({info['status']})", flush=True)
    return code


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run a notebook as a parallelworks-lab job.")
    parser.add_argument("notebook", help="The notebook to execute (.ipynb).")
    parser.add_argument("--parameters", help="A JSON file with the parameters to inject.")
    parser.add_argument("--kernel", default=None, help="Kernel name (default: the notebook's).")
    args = parser.parse_args(argv)
    parameters: dict[str, Any] = {}
    if args.parameters:
        with open(args.parameters, encoding="utf-8") as handle:
            parameters = json.load(handle)
    return run(args.notebook, parameters, args.kernel)


if __name__ == "__main__":
    sys.exit(main())
