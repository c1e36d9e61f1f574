"""Submitting many similar jobs as one array job.

A loop of 300 ``submit`` calls is 300 scheduler calls (sites rate-limit them: 40 at once, then
4 a minute); one array job of 300 tasks is one. :func:`array_script` writes the items into a
single batch script; each task picks its own item by its array index, whichever scheduler runs
it, and finds it in ``$PWLAB_ITEM``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Union

Item = Union[str, int, float]

# Slurm's default MaxArraySize is 1001 (indexes 0-1000); Grid Engine's max_aj_tasks is 75000.
# Chunks of at most this many tasks fit both.
MAX_TASKS_PER_ARRAY = 1000

# The task's index under each scheduler; 1-based everywhere (Grid Engine cannot start at 0).
TASK_INDEX = "${SLURM_ARRAY_TASK_ID:-${SGE_TASK_ID:-${PWLAB_TASK_INDEX:-1}}}"


def chunks(items: Sequence[Item], size: int = MAX_TASKS_PER_ARRAY) -> list[Sequence[Item]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def array_spec(count: int, at_once: int | None = None) -> str:
    """``1-N`` (with ``%K`` to run at most K tasks at once)."""
    spec = f"1-{count}"
    return f"{spec}%{at_once}" if at_once else spec


def array_script(command: str, items: Sequence[Item]) -> str:
    """A batch script that runs ``command`` with ``PWLAB_ITEM`` set to this task's item.

    Items are shell-quoted into a bash array: nothing in them is ever run as code."""
    quoted = "\n".join(f"  {shlex.quote(str(item))}" for item in items)
    return (
        "#!/bin/bash\n"
        f"pwlab_items=(\n{quoted}\n)\n"
        f"pwlab_index={TASK_INDEX}\n"
        'export PWLAB_ITEM="${pwlab_items[$((pwlab_index - 1))]}"\n'
        'export PWLAB_ITEM_INDEX="$pwlab_index"\n'
        "unset pwlab_items pwlab_index\n"
        f"{command}\n"
    )
