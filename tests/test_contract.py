"""One backend contract, run against every backend through the real REST API:
the built-in `local` cluster, and the real Slurm test cluster over local exec, over SSH and over
slurmrestd."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .support.api import server_config
from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
BACKENDS = ["local", "slurm", "slurm-ssh", "slurmrest", "sge", "sge-ssh"]
LOCAL = {
    "id": "local",
    "kind": "local",
    "slots": 2,
    "max_time_minutes": 60,
    "kill_grace_seconds": 2,
}
# What each cluster can do; where it can't, the contract is a clear 400 instead.
CAN = {
    "local": {"array": False, "multinode": False, "gpu": False},
    "slurm": {"array": True, "multinode": True, "gpu": True},
    "slurm-ssh": {"array": True, "multinode": True, "gpu": True},
    "slurmrest": {"array": True, "multinode": True, "gpu": True},
    "sge": {"array": True, "multinode": False, "gpu": False},
    "sge-ssh": {"array": True, "multinode": False, "gpu": False},
}


@pytest.fixture(params=BACKENDS)
def cluster(request) -> str:
    return str(request.param)


@pytest.fixture
def slurm_info(request, cluster) -> dict[str, Any] | None:
    """The test cluster behind ``cluster`` (Slurm or Grid Engine); None for `local`."""
    if cluster == "local":
        return None
    if cluster.startswith("sge"):
        return request.getfixturevalue("sge_cluster")
    return request.getfixturevalue("slurm_cluster")


@pytest.fixture
def jp_server_config(tmp_path, cluster, slurm_info):
    clusters: list[dict[str, Any]] = [LOCAL]
    if slurm_info is not None:
        build = sge_cluster_entry if cluster.startswith("sge") else slurm_cluster_entry
        clusters.append(build(cluster, slurm_info))
    return server_config(tmp_path, clusters)


@pytest.fixture
def workdir(tmp_path, slurm_info) -> Path:
    """A fresh folder every backend's jobs can write to (the SSH user is not root)."""
    base = Path(slurm_info["scratch_dir"]) if slurm_info else tmp_path
    path = base / f"t-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    os.chmod(path, 0o777)
    return path


@pytest.fixture(autouse=True)
def recording(request, cluster, slurm_info, workdir, tmp_path, monkeypatch):
    """With PWLAB_RECORD=1 (`make record`), what the backend says to the real scheduler in each
    test is recorded under tests/data/recordings/ for the replayed contract test
    (test_contract_replay.py). The test itself runs exactly as without it."""
    if not os.environ.get("PWLAB_RECORD") or slurm_info is None:
        yield None
        return
    from .support import cassette

    test = request.node.originalname
    with cassette.recording(monkeypatch, cluster, test, slurm_info, workdir, tmp_path) as session:
        yield session
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        cassette.save_cluster(cluster, slurm_info)
        session.save(cassette.recording_meta(cluster, test, slurm_info))


@pytest.fixture(autouse=True)
def settled(recording, jp_serverapp, jp_asyncio_loop, cluster):
    """When recording (or replaying): after the test, let the poller finish what it does once
    jobs end (accounting usage), so the recording holds it and the replay asks for it too."""
    yield
    if recording is not None:
        from .support import cassette

        service = jp_serverapp.web_app.settings["parallelworks_lab_service"]
        jp_asyncio_loop.run_until_complete(cassette.settle(service, cluster, timeout=30))


def body(cluster: str, workdir: Path, **fields: Any) -> dict[str, Any]:
    return {"cluster": cluster, "working_dir": str(workdir), **fields}


async def test_submit_completes_with_output(api, cluster, workdir):
    job = await api.submit(
        **body(
            cluster,
            workdir,
            name="hello",
            script="#!/bin/bash\necho hello from the job\necho err >&2\n",
        )
    )
    assert job["native_id"] and job["cluster"] == cluster
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert (done["state"], done["exit_code"]) == ("COMPLETED", 0), done
    assert done["started_at"] and done["ended_at"]
    assert await api.read_all(job["id"]) == "hello from the job\n"
    assert await api.read_all(job["id"], "stderr") == "err\n"


async def test_a_missing_working_dir_is_400_and_nothing_is_queued(api, cluster, workdir):
    missing = workdir / "not-made"
    status, answer = await api.call("POST", "jobs", body(cluster, missing, command="true"))
    assert status == 400, answer
    [error] = answer["errors"]
    assert error["field"] == "working_dir" and str(missing) in error["message"], answer
    assert (await api.get("jobs"))["jobs"] == []


async def test_exit_3_is_failed_with_code_3(api, cluster, workdir):
    job = await api.submit(**body(cluster, workdir, command="exit 3"))
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert (done["state"], done["exit_code"]) == ("FAILED", 3), done


async def test_cancel_running_job(api, cluster, workdir):
    job = await api.submit(**body(cluster, workdir, command="echo started; sleep 300"))
    await api.wait(job["id"], {"RUNNING"}, timeout=60)
    status, cancelled = await api.call("DELETE", f"jobs/{job['id']}")
    assert status == 200, cancelled
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert done["state"] == "CANCELLED", done
    status, again = await api.call("DELETE", f"jobs/{job['id']}")
    assert status == 409, again


async def test_hold_release_and_afterok(api, cluster, workdir):
    first = await api.submit(**body(cluster, workdir, command="sleep 3; echo first"))
    second = await api.submit(**body(cluster, workdir, command="echo second", after=[first["id"]]))
    queued = await api.get(f"jobs/{second['id']}")
    assert queued["state"] == "QUEUED", queued
    status, held = await api.call("POST", f"jobs/{second['id']}/hold")
    assert status == 200 and held["state"] == "HELD", held
    first_done = await api.wait(first["id"], TERMINAL, timeout=60)
    assert first_done["state"] == "COMPLETED"
    await asyncio.sleep(2)
    assert (await api.get(f"jobs/{second['id']}"))["state"] == "HELD"
    status, released = await api.call("POST", f"jobs/{second['id']}/release")
    assert status == 200, released
    done = await api.wait(second["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    assert done["started_at"] >= first_done["ended_at"]
    assert await api.read_all(second["id"]) == "second\n"


async def test_array_tasks_each_tracked_with_logs(api, cluster, workdir):
    request = body(
        cluster,
        workdir,
        name="arr",
        resources={"array": "1-3"},
        script="#!/bin/bash\necho task ${SLURM_ARRAY_TASK_ID:-$SGE_TASK_ID}\n",
    )
    if not CAN[cluster]["array"]:
        status, answer = await api.call("POST", "jobs", request)
        assert status == 400 and answer["errors"][0]["field"] == "resources.array"
        return
    parent = await api.submit(**request)
    done = await api.wait(parent["id"], TERMINAL, timeout=90)
    assert done["state"] == "COMPLETED", done
    deadline = time.monotonic() + 30
    tasks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        tasks = [
            j for j in (await api.get("jobs", limit=100))["jobs"] if j["parent_id"] == parent["id"]
        ]
        if len(tasks) == 3 and all(t["state"] == "COMPLETED" for t in tasks):
            break
        await asyncio.sleep(0.3)
    assert sorted(t["array_task"] for t in tasks) == ["1", "2", "3"], tasks
    sep = "." if cluster.startswith("sge") else "_"  # each scheduler's own spelling
    assert {t["native_id"] for t in tasks} == {f"{parent['native_id']}{sep}{i}" for i in (1, 2, 3)}
    for task in tasks:
        assert task["state"] == "COMPLETED"
        assert await api.read_all(task["id"]) == f"task {task['array_task']}\n"


async def test_three_node_job_runs_on_three_nodes(api, cluster, workdir):
    request = body(
        cluster,
        workdir,
        resources={"partition": "multi", "nodes": 3, "ntasks": 3},
        script="#!/bin/bash\nsrun hostname | sort\n",
    )
    if not CAN[cluster]["multinode"]:
        status, answer = await api.call("POST", "jobs", request)
        assert status == 400 and answer["errors"][0]["field"] == "resources.partition"
        return
    job = await api.submit(**request)
    done = await api.wait(job["id"], TERMINAL, timeout=90)
    assert done["state"] == "COMPLETED", done
    hosts = (await api.read_all(job["id"])).split()
    assert len(set(hosts)) == 3, hosts


async def test_gpu_job_sees_its_gpu(api, cluster, workdir):
    request = body(
        cluster,
        workdir,
        resources={"partition": "gpu", "gpus": 1},
        command='echo "gpus=$CUDA_VISIBLE_DEVICES"',
    )
    if not CAN[cluster]["gpu"]:
        request["resources"] = {"gpus": 1}
        status, answer = await api.call("POST", "jobs", request)
        assert status == 400 and answer["errors"][0]["field"] == "resources.gpus"
        return
    job = await api.submit(**request)
    done = await api.wait(job["id"], TERMINAL, timeout=90)
    assert done["state"] == "COMPLETED", done
    out = await api.read_all(job["id"])
    assert out.startswith("gpus=") and out.strip() != "gpus=", out


async def test_bad_partition_and_over_limit_time_are_400(api, cluster, workdir):
    detail = await api.get(f"clusters/{cluster}")
    default = next(p for p in detail["partitions"] if p["default"])
    assert default["max_time_minutes"], detail
    status, answer = await api.call(
        "POST", "jobs", body(cluster, workdir, command="true", resources={"partition": "nope"})
    )
    assert status == 400 and answer["errors"][0]["field"] == "resources.partition", answer
    assert "nope" in answer["message"]
    status, answer = await api.call(
        "POST",
        "jobs",
        body(
            cluster,
            workdir,
            command="true",
            resources={"time_limit_minutes": default["max_time_minutes"] + 1},
        ),
    )
    assert status == 400, answer
    assert answer["errors"][0]["field"] == "resources.time_limit_minutes"
    assert str(default["max_time_minutes"]) in answer["message"]
    assert (await api.get("jobs", cluster=cluster))["jobs"] == []


async def test_account_reaches_the_scheduler_and_is_checked(api, cluster, workdir):
    """The account a job is charged to is the one the job runs under; an account or QOS the
    partition does not allow is a 400 naming the field and what is allowed, before any submit."""

    async def refused(resources: dict[str, Any]) -> tuple[str, str]:
        status, answer = await api.call(
            "POST", "jobs", body(cluster, workdir, command="true", resources=resources)
        )
        assert status == 400, answer
        return answer["errors"][0]["field"], answer["message"]

    if cluster == "local":
        field, message = await refused({"account": "physics"})
        assert field == "resources.account" and "not supported" in message
        return
    sge = cluster.startswith("sge")
    show_account = (
        'qstat -j "$JOB_ID" | sed -n "s/^account: *//p"' if sge else 'echo "$SLURM_JOB_ACCOUNT"'
    )
    job = await api.submit(
        **body(cluster, workdir, command=show_account, resources={"account": "physics"})
    )
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    assert await api.read_all(job["id"]) == "physics\n"
    assert done["resources"]["account"] == "physics"
    if sge:
        field, message = await refused({"qos": "high"})
        assert field == "resources.qos" and "not supported" in message
        return
    # proj allows accounts physics,chem and QOS normal,high; multi denies guest.
    field, message = await refused({"partition": "proj", "account": "bio"})
    assert field == "resources.account" and "allowed: physics, chem" in message
    field, message = await refused({"partition": "proj", "account": "chem", "qos": "low"})
    assert field == "resources.qos" and "allowed: normal, high" in message
    field, message = await refused({"partition": "multi", "account": "guest"})
    assert field == "resources.account" and "denied" in message
    assert {j["id"] for j in (await api.get("jobs", cluster=cluster))["jobs"]} == {job["id"]}
    # Allowed by the partition and by the user's associations in slurmdbd: it runs under both.
    both = await api.submit(
        **body(
            cluster,
            workdir,
            command='echo "$SLURM_JOB_ACCOUNT $SLURM_JOB_QOS"',
            resources={"partition": "proj", "account": "physics", "qos": "high"},
        )
    )
    done = await api.wait(both["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    assert await api.read_all(both["id"]) == "physics high\n"
    assert (done["resources"]["account"], done["resources"]["qos"]) == ("physics", "high")
    # A QOS that exists but the user may not use (debug allows any QOS). Over the command line
    # the user's associations are read (sacctmgr), so the server refuses it before sbatch;
    # slurmrestd cannot tell us, so it is Slurm's own refusal, on the same field.
    field, message = await refused({"partition": "debug", "qos": "restricted"})
    assert field == "resources.qos", message
    if cluster == "slurmrest":
        assert "invalid qos" in message.lower(), message
    else:
        assert "allowed: high, normal" in message, message
    assert {j["id"] for j in (await api.get("jobs", cluster=cluster))["jobs"]} == {
        job["id"],
        both["id"],
    }


async def test_logs_tail_while_running(api, cluster, workdir):
    job = await api.submit(
        **body(
            cluster,
            workdir,
            script="#!/bin/bash\nfor i in 1 2 3 4; do echo line $i; sleep 1; done\n",
        )
    )
    offset, seen, pieces_while_running = 0, "", 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunk = await api.get(f"jobs/{job['id']}/logs", stream="stdout", offset=offset)
        if chunk["data"] and not chunk["eof"]:
            pieces_while_running += 1
        seen += chunk["data"]
        offset = chunk["offset"]
        if chunk["eof"]:
            break
        await asyncio.sleep(0.3)
    assert seen == "line 1\nline 2\nline 3\nline 4\n"
    assert pieces_while_running >= 2


async def test_cluster_detail_reports_partitions(api, cluster, slurm_info):
    detail = await api.get(f"clusters/{cluster}")
    names = {p["name"] for p in detail["partitions"]}
    if cluster == "local":
        assert names == {"local"}
        return
    if cluster.startswith("sge"):
        [queue] = detail["partitions"]
        assert (queue["name"], queue["default"], queue["max_time_minutes"]) == ("all.q", True, 60)
        assert queue["cpus_per_node"] == 4 and queue["nodes_total"] == 1
        assert "gpus" not in detail["options_schema"]["properties"]
        return
    assert names == {"debug", "gpu", "multi", "proj"}
    parts = {p["name"]: p for p in detail["partitions"]}
    assert (parts["proj"]["accounts"], parts["proj"]["qos"]) == (
        ["physics", "chem"],
        ["normal", "high"],
    )
    assert parts["multi"]["deny_accounts"] == ["guest"]
    # The command line also reads the user's own accounts and QOS from slurmdbd (sacctmgr):
    # a partition open to anyone offers those. slurmrestd cannot say (its slurmdb side is off).
    mine = set() if cluster == "slurmrest" else set(slurm_info["accounting"]["accounts"])
    assert set(parts["debug"]["accounts"]) >= mine and "guest" not in parts["multi"]["accounts"]
    mine_qos = set() if cluster == "slurmrest" else set(slurm_info["accounting"]["qos"])
    assert set(parts["debug"]["qos"]) == mine_qos
    assert parts["debug"]["default"] and parts["debug"]["max_time_minutes"] == 30
    assert parts["gpu"]["gpus_per_node"] == 2 and parts["gpu"]["gpu_types"] == ["tesla"]
    assert parts["multi"]["nodes_total"] == 3 and parts["multi"]["cpus_per_node"] == 2
    schema = detail["options_schema"]
    [proj] = [
        b["then"] for b in schema["allOf"] if b["if"]["properties"]["partition"]["const"] == "proj"
    ]
    assert proj["properties"]["account"]["enum"] == ["physics", "chem", None]
    assert proj["properties"]["qos"]["enum"] == ["normal", "high", None]
    assert (
        schema["properties"]["partition"]["enum"] == sorted(names)
        or set(schema["properties"]["partition"]["enum"]) == names
    )


async def test_server_secrets_never_reach_the_job(api, cluster, workdir, monkeypatch):
    # The server runs in this process: its environment is what sbatch/local jobs would inherit.
    monkeypatch.setenv("JUPYTER_TOKEN", "server-secret-123")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-secret-456")
    monkeypatch.setenv("PWLAB_VISIBLE", "fine")
    job = await api.submit(**body(cluster, workdir, command="env | sort"))
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    out = await api.read_all(job["id"])
    assert "server-secret-123" not in out and "hub-secret-456" not in out
    if cluster in ("local", "slurm"):  # these inherit the server's environment
        assert "PWLAB_VISIBLE=fine" in out
