"""The environment handed to jobs and scheduler commands: the server's, minus its secrets.

A job inherits the environment of whatever starts it (``sbatch`` exports everything by default),
and the Jupyter server's holds the credentials of the server itself. Those must never reach a
job, its output or a notebook it executes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Optional

SECRET_NAMES = frozenset(
    {"JUPYTER_TOKEN", "JPY_API_TOKEN", "PWLAB_TOKEN", "PW_API_KEY", "SLURM_JWT"}
)
# JupyterHub's API and OAuth tokens, whatever the exact name in a given version.
SECRET_PATTERN = re.compile(r"^JUPYTERHUB_.*(TOKEN|SECRET|KEY)")


def is_secret(name: str) -> bool:
    return name in SECRET_NAMES or bool(SECRET_PATTERN.match(name))


def clean_environ(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """``os.environ`` without the server's secrets, updated with ``extra``."""
    env = {k: v for k, v in os.environ.items() if not is_secret(k)}
    env.update(extra or {})
    return env
