"""Submitting many: ``Client.map`` turns N similar runs into ONE array job (one scheduler call)
where the cluster has arrays, and into N jobs where it has not (``local``)."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from parallelworks_lab.client import Client
from parallelworks_lab.client.many import array_script, chunks

from .support.server_process import TOKEN, Server
from .support.slurm_cluster import slurm_cluster_entry

# Items a shell would run if they were pasted into a script: each must arrive literally.
TRICKY = ["plain", "two words", "$(touch canary)", "`id`", "a'b\"c", "-x; rm -rf /"]


def test_array_script_quotes_items_and_picks_by_index(tmp_path):
    script = array_script('printf "%s|%s\\n" "$PWLAB_ITEM_INDEX" "$PWLAB_ITEM"', TRICKY)
    path = tmp_path / "s.sh"
    path.write_text(script)
    import subprocess

    for index, item in enumerate(TRICKY, 1):
        out = subprocess.run(
            ["bash", str(path)],
            env={"PATH": "/usr/bin:/bin", "SGE_TASK_ID": str(index)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out == f"{index}|{item}\n"
    assert not (tmp_path / "canary").exists()
    assert [len(c) for c in chunks(list(range(2500)))] == [1000, 1000, 500]


def test_map_on_a_cluster_without_arrays_submits_one_job_per_item(pw_client):
    jobs = pw_client.map('echo "item=$PWLAB_ITEM"', ["a", "b c", "$(touch canary)"], time="5")
    assert len(jobs) == 3
    outputs = [job.wait(timeout=60).logs() for job in jobs]
    assert outputs == ["item=a\n", "item=b c\n", "item=$(touch canary)\n"]


def test_map_is_one_sbatch_for_many_items_on_slurm(slurm_cluster, tmp_path):
    entry = slurm_cluster_entry("slurm", slurm_cluster)
    entry["python"] = sys.executable
    server = Server(tmp_path / "srv", {"clusters": [entry]})
    (tmp_path / "srv").mkdir()
    server.start()
    client = Client(f"http://127.0.0.1:{server.port}/", TOKEN)
    workdir = Path(slurm_cluster["scratch_dir"]) / f"map-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(mode=0o777)
    try:
        items = [*TRICKY, *range(24)]  # 30 runs
        before = client.cluster("slurm").scheduler_commands
        t0 = time.monotonic()
        [array] = client.map(
            'echo "$PWLAB_ITEM_INDEX:$PWLAB_ITEM"', items, working_dir=str(workdir), time="5"
        )
        submit_seconds = time.monotonic() - t0
        after = client.cluster("slurm").scheduler_commands
        # One sbatch for 30 runs (the rest of the difference is the poller's squeue).
        assert after - before <= 3, (before, after)
        assert array.resources.array == "1-30"
        done = array.wait(timeout=180)
        assert done.state.value == "COMPLETED", done
        tasks = [j for j in client.jobs(limit=100) if j.parent_id == array.id]
        assert len(tasks) == 30
        seen = {job.logs().strip() for job in tasks}
        assert seen == {f"{i}:{item}" for i, item in enumerate(items, 1)}
        assert not (workdir / "canary").exists()
        assert submit_seconds < 10
    finally:
        client.close()
        server.stop()
