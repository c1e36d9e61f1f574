"""The ``slurm`` cluster kind: Slurm's command-line tools on this machine or over SSH.

The work is done by :class:`.slurm_cli.SlurmCommandLineBackend`, which ACTIVATE shares (it runs
the same commands on its clusters' login nodes); this module only names the kind, so that no
backend module imports another.
"""

from __future__ import annotations

from typing import ClassVar

from .slurm_cli import SlurmCommandLineBackend


class SlurmBackend(SlurmCommandLineBackend):
    kind: ClassVar[str] = "slurm"
