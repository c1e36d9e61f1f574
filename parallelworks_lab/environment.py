"""The environment handed to jobs and scheduler commands: the server's, minus its secrets.

A job inherits the environment of whatever starts it (``sbatch`` exports everything by default),
and the Jupyter server's holds the credentials of the server itself. Those must never reach a
job, its output or a notebook it executes.

A server that itself runs inside a Slurm job (batchspawner, Open OnDemand) also holds that job's
``SLURM_*`` variables. ``sbatch`` and ``srun`` read many of them as defaults (``SLURM_NTASKS``,
``SLURM_MEM_PER_CPU``, ``SLURM_CPUS_PER_TASK``...), and a submitted job would start with the
enclosing job's id, node list and task layout wherever Slurm does not overwrite them: they are
dropped too.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Optional

SECRET_NAMES = frozenset(
    {"JUPYTER_TOKEN", "JPY_API_TOKEN", "PWLAB_TOKEN", "PW_API_KEY", "SLURM_JWT"}
)
# JupyterHub's API and OAuth tokens, whatever the exact name in a given version.
SECRET_PATTERN = re.compile(r"^JUPYTERHUB_.*(TOKEN|SECRET|KEY)")


# Set by Slurm in a job's environment (SLURMD_NODENAME too). Their presence means this process
# runs inside a job.
SLURM_JOB_MARKERS = ("SLURM_JOB_ID", "SLURM_JOBID")
SLURM_JOB_PREFIXES = ("SLURM_", "SLURMD_")
# Where the Slurm configuration is: the same for a job on a compute node as for the commands it
# runs (slurmd sets it for configless clusters), and needed by them.
SLURM_KEPT = frozenset({"SLURM_CONF"})


@functools.lru_cache(maxsize=1024)
def is_secret(name: str) -> bool:
    return name in SECRET_NAMES or bool(SECRET_PATTERN.match(name))


def inside_slurm_job(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in SLURM_JOB_MARKERS)


def is_enclosing_job_variable(name: str) -> bool:
    """A variable a Slurm job sets for itself, which must not pass on to jobs it submits."""
    return name.startswith(SLURM_JOB_PREFIXES) and name not in SLURM_KEPT


def clean_environ(
    extra: Optional[Mapping[str, str]] = None, environ: Optional[Mapping[str, str]] = None
) -> dict[str, str]:
    """``os.environ`` (or ``environ``) without the server's secrets and, when the server runs
    inside a Slurm job, without that job's ``SLURM_*`` variables; updated with ``extra`` (a
    cluster's configured ``env`` and the job's own, which are kept as given)."""
    source = os.environ if environ is None else environ
    in_job = inside_slurm_job(source)
    env = {
        k: v
        for k, v in source.items()
        if not is_secret(k) and not (in_job and is_enclosing_job_variable(k))
    }
    env.update(extra or {})
    return env
