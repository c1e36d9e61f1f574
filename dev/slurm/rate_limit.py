#!/usr/bin/env python3
"""A Slurm command wrapper that refuses calls beyond a rate, the way Slurm 23.02+ does.

Slurm's own per-user RPC rate limiting (``SlurmctldParameters=rl_enable``) is a token bucket:
a burst of ``rl_bucket_size`` calls, refilled at ``rl_refill_rate`` per ``rl_refill_period``.
Over it, every client command fails with exit 1 and Slurm's SLURMCTLD_COMMUNICATIONS_BACKOFF
text, "Rate limit exceeded, please retry momentarily". The test cluster runs Slurm 22.05, which
has no rate limiting, so tests put a folder of links to this script (named squeue, sbatch, ...)
first on PATH. Settings come from the environment:

  PWLAB_RL_STATE   file holding the bucket (shared by every command; locked while used)
  PWLAB_RL_BURST   bucket size (default 40, as sites configure it)
  PWLAB_RL_PER_MIN tokens added per minute (default 4)

Each refused call is counted in the state file, so a test can see how hard it was pushed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

MESSAGE = "Rate limit exceeded, please retry momentarily"
# How each command reports a refused RPC (the prefixes Slurm's tools print).
PREFIX = {
    "squeue": "squeue: error: slurm_load_jobs error: ",
    "sbatch": "sbatch: error: Batch job submission failed: ",
    "sinfo": "slurm_load_partitions: ",
    "scontrol": "slurm_load_partitions error: ",
    "scancel": "scancel: error: Kill job error on job id {arg}: ",
    "sacct": "sacct: error: ",
    "sacctmgr": "sacctmgr: error: ",
}


def real_command(name: str) -> str:
    here = Path(sys.argv[0]).resolve().parent
    mine = Path(sys.argv[0]).absolute().parent
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.parent.resolve() in (here, mine.resolve()):
            continue
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return str(candidate)
    sys.exit(f"{name}: command not found")


def take_token(state_file: Path, burst: float, per_min: float) -> bool:
    with state_file.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        now = time.time()
        state = json.loads(text) if text else {"tokens": burst, "at": now, "refused": 0, "ok": 0}
        state["tokens"] = min(burst, state["tokens"] + (now - state["at"]) * per_min / 60)
        state["at"] = now
        allowed = state["tokens"] >= 1
        if allowed:
            state["tokens"] -= 1
            state["ok"] += 1
        else:
            state["refused"] += 1
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(state))
        return allowed


def main() -> None:
    name = Path(sys.argv[0]).name
    state_file = Path(os.environ["PWLAB_RL_STATE"])
    burst = float(os.environ.get("PWLAB_RL_BURST", "40"))
    per_min = float(os.environ.get("PWLAB_RL_PER_MIN", "4"))
    if not take_token(state_file, burst, per_min):
        arg = sys.argv[-1] if len(sys.argv) > 1 else ""
        print(PREFIX.get(name, f"{name}: error: ").format(arg=arg) + MESSAGE, file=sys.stderr)
        sys.exit(1)
    command = real_command(name)
    os.execv(command, [command, *sys.argv[1:]])


if __name__ == "__main__":
    main()
