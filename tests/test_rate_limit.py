"""Under a scheduler's per-user rate limit (Slurm 23.02+ ``rl_enable``) the extension slows
down, says so in the cluster's status, never marks a job failed, and loses nothing.

The test cluster runs Slurm 22.05, which has no rate limiting: ``dev/slurm/rate_limit.py``
stands in front of every Slurm command and refuses calls beyond a token bucket exactly the way
Slurm reports it ("Rate limit exceeded, please retry momentarily", exit 1)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from parallelworks_lab.errors import RateLimited
from parallelworks_lab.models import JobSubmit
from parallelworks_lab.states import JobState

from .support.service import wait_state
from .support.slurm_cluster import slurm_cluster_entry
from .support.waiting import wait_until_async

WRAPPER = Path(__file__).resolve().parents[1] / "dev" / "slurm" / "rate_limit.py"
COMMANDS = ("squeue", "sbatch", "sinfo", "scontrol", "scancel", "sacct", "sacctmgr")


def rate_limited_path(folder: Path) -> str:
    folder.mkdir()
    for name in COMMANDS:
        (folder / name).symlink_to(WRAPPER)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def bucket(state: Path) -> dict[str, float]:
    return json.loads(state.read_text())


async def test_rate_limited_scheduler_slows_us_down_and_loses_nothing(
    slurm_cluster, tmp_path, job_service
):
    state = tmp_path / "bucket.json"
    entry = slurm_cluster_entry("slurm", slurm_cluster)
    entry["env"] = {
        **entry["env"],
        "PATH": rate_limited_path(tmp_path / "bin"),
        "PWLAB_RL_STATE": str(state),
        "PWLAB_RL_BURST": "6",
        "PWLAB_RL_PER_MIN": "20",  # one call every 3 s once the burst is spent
    }
    service = await job_service(
        [entry | {"poll_interval": 0.3}], root_dir=Path(slurm_cluster["scratch_dir"])
    )
    job = await service.submit(JobSubmit(cluster="slurm", command="sleep 2; echo done"))
    cluster = service.clusters["slurm"]
    # The burst is soon spent by the 0.3 s poll: the status says what is going on.
    await wait_until_async(
        lambda: cluster.status == "rate_limited",
        what="rate_limited status",
        timeout=90,
        interval=0.2,
    )
    assert "rate-limiting you" in (cluster.status_message or "")
    assert not service.get_job(job.id).terminal  # never failed for a refused call
    # A submit the scheduler refuses is a 429 with the explanation, and nothing is kept.
    before = service.store.count()
    with pytest.raises(RateLimited) as refused:
        for _ in range(20):  # the bucket may hold a token for a moment: use it up
            await service.submit(JobSubmit(cluster="slurm", command="true"))
    assert refused.value.status == 429
    assert "rate-limiting you" in refused.value.message
    assert service.store.count() <= before + 1  # at most one got a token in between
    # Backing off: over 12 s a 0.3 s poll would make ~40 calls; we make far fewer.
    counted = bucket(state)
    await asyncio.sleep(12)
    later = bucket(state)
    calls = (later["ok"] + later["refused"]) - (counted["ok"] + counted["refused"])
    assert calls <= 8, later
    # The job's end is found once the scheduler answers again, exactly as it was.
    await wait_state(service, job.id, {JobState.COMPLETED}, timeout=120)
    await wait_until_async(
        lambda: cluster.status == "ok", what="ok again", timeout=60, interval=0.2
    )
