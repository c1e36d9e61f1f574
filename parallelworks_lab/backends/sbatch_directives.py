"""sbatch options as ``#SBATCH`` lines of the script, where sbatch reads them exactly as it reads
the same options on its command line.

Why: a submit whose options are all in its script is always the same command (``sbatch
--parsable``), so the local transport can start it ahead of time (see ``transports.local``)
and sbatch's start (about half of a submit) is off the researcher's clock.

When it is the same: the two places differ only when another source sets the same option.
Command-line options override ``#SBATCH`` lines and ``SBATCH_*`` input variables; ``#SBATCH``
lines are overridden by both. So the options stay on the command line when the script has
directives of its own (``#SBATCH``, or ``#PBS``, which sbatch also reads), when the environment
sbatch runs with sets any ``SBATCH_*``/``SLURM_*`` variable (other than ``SLURM_CONF``), and
when a value has a character that sbatch's reading of a directive line treats specially (quotes,
``#``, white space, and "hetjob"/"packjob" anywhere in the line). How sbatch reads those has
changed between versions; plain values read the same in all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Optional

PLAIN_OPTION = re.compile(r"--[a-z][a-z-]*=[A-Za-z0-9_.,:/=+@%-]*")
# Split a line into separate jobs of a heterogeneous job wherever they appear in it.
HETJOB_WORDS = re.compile(r"hetjob|packjob", re.IGNORECASE)
OWN_DIRECTIVES = ("#SBATCH", "#PBS")


def sets_options(name: str) -> bool:
    """Whether an environment variable can set an sbatch option (or might, in some version)."""
    return name.startswith(("SBATCH_", "SLURM_")) and name != "SLURM_CONF"


def script_with_directives(
    script: str, options: list[str], environment: Iterable[str] | Mapping[str, str]
) -> Optional[str]:
    """``script`` with ``options`` as ``#SBATCH`` lines after its ``#!`` line, if sbatch reads
    that as it reads ``options`` on its command line; None if it might not (see above).
    ``environment``: the names of the variables sbatch will run with."""
    if not script.startswith("#!") or any(word in script for word in OWN_DIRECTIVES):
        return None
    for option in options:
        if not PLAIN_OPTION.fullmatch(option) or HETJOB_WORDS.search(option):
            return None
    if any(sets_options(name) for name in environment):
        return None
    first_line, _, rest = script.partition("\n")
    directives = "".join(f"#SBATCH {option}\n" for option in options)
    return f"{first_line}\n{directives}{rest}"
