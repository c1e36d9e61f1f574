"""Benchmarks against the real Slurm test cluster (run with `make bench`; starts the cluster).

1. Submit overhead, every path side by side in one run: bare sbatch, the HTTP floor, ours on the
   `local` transport and over SSH, and jupyterlab-slurm when it can be installed
   (bench_submit.py).
2. Scheduler load with 1/10/50/200 watchers at 1,000 and 10,000 tracked jobs (real pending array
   tasks), GET /jobs latency at each size, and behaviour under the rate-limit wrapper
   (bench_scale.py).
3. Submitting many: 300 runs of one command as a loop of submits vs one ``Client.map`` (an
   array job): scheduler commands for each (the poller is slowed to 60 s so it does not count).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bench_scale import bench_rate_limited, bench_scale
from bench.bench_submit import bench_submit
from tests.support.server_process import TOKEN, Server
from tests.support.slurm_cluster import slurm_cluster_entry, start_slurm


def bench_many(info: dict[str, Any], runs: int = 300) -> bool:
    """300 runs of one command from a notebook: a loop of submits vs one Client.map."""
    from parallelworks_lab.client import Client

    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-many-"))
    server = Server(tmp, {"clusters": [slurm_cluster_entry("slurm", info)], "poll_interval": 60})
    server.start()
    client = Client(f"http://127.0.0.1:{server.port}/", TOKEN)
    workdir = Path(info["scratch_dir"]) / f"bench-many-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(mode=0o777)
    try:
        start = client.cluster("slurm").scheduler_commands
        t0 = time.perf_counter()
        for i in range(runs):
            client.submit(command=f"echo {i}", working_dir=str(workdir), time="1")
        loop_s = time.perf_counter() - t0
        after_loop = client.cluster("slurm").scheduler_commands
        t0 = time.perf_counter()
        client.map("echo $PWLAB_ITEM", list(range(runs)), working_dir=str(workdir), time="1")
        map_s = time.perf_counter() - t0
        after_map = client.cluster("slurm").scheduler_commands
    finally:
        client.close()
        server.stop()
        subprocess.run(
            ["scancel", "-u", info["user"]],
            env={**os.environ, "SLURM_CONF": info["slurm_conf"]},
            check=False,
        )
    loop_calls, map_calls = after_loop - start, after_map - after_loop
    print(f"{runs} runs of one command from a notebook (scheduler commands, wall time)")
    print(f"  loop of client.submit     {loop_calls:5d} commands   {loop_s:6.1f} s")
    print(f"  client.map (array job)    {map_calls:5d} commands   {map_s:6.1f} s")
    ok = map_calls <= 2
    verdict = "PASS" if ok else "MISS"
    print(f"  target: one array job, <= 2 commands (a site's burst is 40) -> {verdict}")
    return ok


def main() -> int:
    info = start_slurm()
    ok = bench_submit(info)
    ok = bench_scale(info) and ok
    ok = bench_rate_limited(info) and ok
    ok = bench_many(info) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
