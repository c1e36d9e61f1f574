"""Parallel Works ACTIVATE clusters, through the REST API, against the contract server
(tests/support/activate_server.py: bodies checked against parallelworks-client's published
models) backed by the real Slurm test cluster (real squeue/sinfo/scancel; SSH to its real sshd)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

if sys.version_info < (3, 11):  # the package's models use enum.StrEnum
    pytest.skip("parallelworks-client's models need Python 3.11+", allow_module_level=True)

import parallelworks_client.models as pwc

from parallelworks_lab.providers.activate_ssh import parse_connection
from parallelworks_lab.providers.platform import (
    CredentialError,
    host_from_api_key,
    resolve_credentials,
)

from .support.activate_server import ActivateServer, check_body
from .support.api import server_config
from .support.waiting import wait_until_async

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
SECRET = "s3cr3t-do-not-leak"


def make_key(host: str, secret: str = SECRET) -> str:
    encoded = base64.urlsafe_b64encode(host.encode()).decode().rstrip("=")
    return f"pwt_{encoded}.{secret}"


@pytest.fixture(scope="module")
def platform(slurm_cluster):
    server = ActivateServer(slurm_cluster, api_key="").start()
    server.api_key = make_key(server.base_url)
    yield server
    server.stop()


@pytest.fixture
def api_key(platform, request) -> str:
    """The platform's key; parametrize indirectly with another secret for a bad one."""
    return make_key(platform.base_url, getattr(request, "param", SECRET))


@pytest.fixture
def jp_server_config(tmp_path, local_cluster, platform, api_key, slurm_cluster):
    entry = {
        "id": "pw",
        "kind": "activate",
        "name": "Parallel Works",
        "api_key": api_key,  # no platform_host: it is decoded from the key
        # No known_hosts: the host keys the platform reports are used.
        "ssh": {"key_file": slurm_cluster["ssh"]["key_file"]},
        "refresh_interval": 1.0,
        "start_poll_interval": 0.3,
        "poll_interval": 0.5,
        "request_timeout": 5,
    }
    return server_config(tmp_path, [local_cluster, entry])


@pytest.fixture
def workdir(slurm_cluster) -> Path:
    path = Path(slurm_cluster["scratch_dir"]) / f"pw-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    os.chmod(path, 0o777)
    return path


@pytest.fixture(autouse=True)
def bodies_match_the_published_models(platform):
    """Every body the contract server sent in a test fits parallelworks-client's models."""
    platform.invalid.clear()
    yield
    assert platform.invalid == []


def clusters_by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in body["clusters"]}


async def wait_cluster(api, cluster_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return clusters_by_id(await api.get("clusters")).get(cluster_id, {})

    return await wait_until_async(
        probe, lambda seen: seen.get("status") == status, f"{cluster_id} {status}", timeout=timeout
    )


def service_of(jp_serverapp):
    return jp_serverapp.web_app.settings["parallelworks_lab_service"]


# -- without a server ----------------------------------------------------------------------------


def test_credentials_and_addresses(monkeypatch, tmp_path):
    key = make_key("activate.example.org")
    assert host_from_api_key(key) == "activate.example.org"
    monkeypatch.delenv("PW_API_KEY", raising=False)
    monkeypatch.delenv("PW_PLATFORM_HOST", raising=False)
    assert resolve_credentials(key, None, None) == (key, "https://activate.example.org")
    (tmp_path / "key").write_text(key + "\n")
    assert resolve_credentials(None, str(tmp_path / "key"), "http://127.0.0.1:9") == (
        key,
        "http://127.0.0.1:9",
    )
    monkeypatch.setenv("PW_API_KEY", key)
    monkeypatch.setenv("PW_PLATFORM_HOST", "other.example.org")
    assert resolve_credentials(None, None, None) == (key, "https://other.example.org")
    monkeypatch.delenv("PW_API_KEY")
    with pytest.raises(CredentialError, match="no API key"):
        resolve_credentials(None, None, None)
    with pytest.raises(CredentialError) as info:
        host_from_api_key("pwt_!!!." + SECRET)
    assert SECRET not in str(info.value)
    assert parse_connection("ssh -p 2222 pwlab@127.0.0.1") == ("pwlab", "127.0.0.1", 2222)
    assert parse_connection("alice@10.0.0.5") == ("alice", "10.0.0.5", None)
    assert parse_connection("ssh://bob@login.example.org:2200") == (
        "bob",
        "login.example.org",
        2200,
    )


def test_the_model_check_bites():
    """The contract server's check refuses bodies that drift from the published models."""
    good = {
        "cluster": "hpc",
        "clusterType": "slurm",
        "createdAt": 1,
        "id": 7,
        "imageUrl": "",
        "name": "x",
        "nodes": "",
        "partition": "debug",
        "state": ["RUNNING"],
        "time": 0,
        "user": "pwlab",
    }
    assert check_body(pwc.SchedulerJob, good) == []
    assert check_body(pwc.SchedulerJob, {**good, "id": "7"})  # wrong type
    assert check_body(pwc.SchedulerJob, {**good, "exitCode": 0})  # a field it does not have
    missing = dict(good)
    del missing["state"]
    assert check_body(pwc.SchedulerJob, missing)
    assert check_body(pwc.SchedulerCommandBody, {"action": "suspend"})  # not in the enum


# -- through the REST API ------------------------------------------------------------------------


async def test_cluster_list_and_status_mapping(api, platform, jp_serverapp):
    body = await api.get("clusters")
    clusters = clusters_by_id(body)
    assert set(clusters) == {
        "local",
        "pw-hpc",
        "pw-cold",
        "pw-proxied",
        "pw-rekeyed",
        "pw-pbs",
        "pw-broken",
    }
    assert "pw" not in clusters  # the entry itself shows only when something is wrong
    hpc = clusters["pw-hpc"]
    assert (hpc["kind"], hpc["name"], hpc["status"]) == ("activate", "HPC", "ok"), hpc
    assert "ACTIVATE existing" in hpc["description"]
    assert clusters["pw-cold"]["status"] == "off"
    assert "start it" in clusters["pw-cold"]["status_message"]
    proxied = clusters["pw-proxied"]
    assert proxied["status"] == "degraded" and "shouldPlatformProxy" in proxied["status_message"]
    # SSH is tried once (a login, no scheduler command) and enforces the platform's host keys.
    rekeyed = await wait_cluster(api, "pw-rekeyed", "degraded")
    assert "host key" in rekeyed["status_message"], rekeyed
    # A PBS cluster is listed, and says why nothing can be submitted to it from here.
    pbs = clusters["pw-pbs"]
    assert pbs["status"] == "degraded" and "scheduler is pbs" in pbs["status_message"], pbs
    status, refused = await api.call(
        "POST", "jobs", {"cluster": "pw-pbs", "command": "true", "working_dir": "/tmp"}
    )
    assert status == 503 and "scheduler is pbs" in refused["message"], refused
    broken = clusters["pw-broken"]
    assert broken["status"] == "error" and "quota exceeded" in broken["status_message"]
    # One list request per refresh, no matter how many clusters.
    assert platform.requests["GET clusters"] >= 1
    # The key is nowhere in what we answer.
    texts = [json.dumps(body), json.dumps(await api.get("openapi.json"))]
    texts.append(json.dumps(await api.get("clusters/pw-hpc")))
    for text in texts:
        assert SECRET not in text and platform.api_key not in text


async def test_partitions_from_the_platform(api, platform):
    detail = await api.get("clusters/pw-hpc")
    parts = {p["name"]: p for p in detail["partitions"]}
    assert set(parts) == {"debug", "gpu", "multi", "proj"}
    # Who may use a queue, as the platform reports it: offered as choices, checked on submit.
    assert (parts["proj"]["accounts"], parts["proj"]["qos"]) == (
        ["physics", "chem"],
        ["normal", "high"],
    )
    assert (parts["multi"]["deny_accounts"], parts["debug"]["accounts"]) == (["guest"], [])
    [proj] = [
        b["then"]["properties"]
        for b in detail["options_schema"]["allOf"]
        if b["if"]["properties"]["partition"]["const"] == "proj"
    ]
    assert proj["account"]["enum"] == ["physics", "chem", None]
    assert parts["debug"]["default"] is True
    assert (parts["debug"]["max_time_minutes"], parts["multi"]["max_time_minutes"]) == (30, 60)
    assert (parts["multi"]["nodes_total"], parts["debug"]["nodes_total"]) == (3, 1)
    assert parts["gpu"]["gpus_per_node"] == 2 and parts["gpu"]["gpu_types"] == ["tesla"]
    assert parts["debug"]["cpus_per_node"] == 8  # node sizes: sinfo over SSH, cached
    assert detail["options_schema"]["properties"]["partition"]["enum"] == [
        "debug",
        "gpu",
        "multi",
        "proj",
    ]
    assert platform.requests["GET clusters/{name}/scheduler-queues"] >= 1
    status, off = await api.call("GET", "clusters/pw-cold")
    assert status == 503 and "stopped on the platform" in off["message"], off


async def test_submit_over_ssh_completes_with_logs(api, platform, workdir):
    job = await api.submit(
        cluster="pw-hpc",
        working_dir=str(workdir),
        name="hello",
        script="#!/bin/bash\necho hello from activate\necho err >&2\n",
    )
    assert job["native_id"]
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert (done["state"], done["exit_code"]) == ("COMPLETED", 0), done
    assert await api.read_all(job["id"]) == "hello from activate\n"
    assert await api.read_all(job["id"], "stderr") == "err\n"
    failed = await api.submit(cluster="pw-hpc", working_dir=str(workdir), command="exit 3")
    done = await api.wait(failed["id"], TERMINAL, timeout=60)
    assert (done["state"], done["exit_code"]) == ("FAILED", 3), done


async def test_account_and_qos_from_the_queues_reach_sbatch(api, platform, workdir):
    """The account goes to sbatch over SSH (the job runs under it); one the queue does not
    allow is refused before anything reaches the cluster."""
    status, answer = await api.call(
        "POST",
        "jobs",
        {
            "cluster": "pw-hpc",
            "working_dir": str(workdir),
            "command": "true",
            "resources": {"partition": "proj", "account": "bio"},
        },
    )
    assert status == 400 and answer["errors"][0]["field"] == "resources.account", answer
    assert "allowed: physics, chem" in answer["message"]
    job = await api.submit(
        cluster="pw-hpc",
        working_dir=str(workdir),
        command='echo "$SLURM_JOB_ACCOUNT"',
        resources={"account": "chem"},
    )
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    assert await api.read_all(job["id"]) == "chem\n"


async def test_array_tasks_are_tracked_over_ssh(api, platform, workdir):
    parent = await api.submit(
        cluster="pw-hpc",
        working_dir=str(workdir),
        name="arr",
        resources={"array": "1-2"},
        script="#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n",
    )
    done = await api.wait(parent["id"], TERMINAL, timeout=60)
    assert done["state"] == "COMPLETED", done
    deadline = time.monotonic() + 30
    tasks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        tasks = [j for j in (await api.get("jobs"))["jobs"] if j["parent_id"] == parent["id"]]
        if len(tasks) == 2 and all(t["state"] == "COMPLETED" for t in tasks):
            break
        await asyncio.sleep(0.2)
    assert sorted(t["native_id"] for t in tasks) == [f"{parent['native_id']}_{i}" for i in (1, 2)]
    for task in tasks:
        assert await api.read_all(task["id"]) == f"task {task['array_task']}\n"


async def test_watching_costs_the_scheduler_nothing(api, platform, workdir):
    job = await api.submit(cluster="pw-hpc", working_dir=str(workdir), command="sleep 4")
    await api.wait(job["id"], {"RUNNING"}, timeout=30)
    before = await api.get("clusters/pw-hpc")
    asked = platform.requests["GET scheduler-jobs"]
    await asyncio.sleep(2)
    after = await api.get("clusters/pw-hpc")
    assert after["polls"] > before["polls"]  # it was watched ...
    assert after["scheduler_commands"] == before["scheduler_commands"]  # ... with no SSH command
    assert platform.requests["GET scheduler-jobs"] - asked <= after["polls"] - before["polls"]
    done = await api.wait(job["id"], TERMINAL, timeout=30)
    assert (done["state"], done["exit_code"]) == ("COMPLETED", 0)


async def test_cancel_hold_release_through_the_platform(api, platform, workdir):
    first = await api.submit(cluster="pw-hpc", working_dir=str(workdir), command="sleep 300")
    await api.wait(first["id"], {"RUNNING"}, timeout=30)
    second = await api.submit(
        cluster="pw-hpc", working_dir=str(workdir), command="echo two", after=[first["id"]]
    )
    await api.wait(second["id"], {"QUEUED"}, timeout=30)
    status, held = await api.call("POST", f"jobs/{second['id']}/hold")
    assert status == 200 and held["state"] == "HELD", held
    status, released = await api.call("POST", f"jobs/{second['id']}/release")
    assert status == 200 and released["state"] == "QUEUED", released
    status, _ = await api.call("DELETE", f"jobs/{first['id']}")
    assert status == 200
    done = await api.wait(first["id"], TERMINAL, timeout=30)
    assert done["state"] == "CANCELLED", done
    actions = [(a, r) for j, a, r in platform.commands if j == first["native_id"]]
    assert actions == [("cancel", "ok")]
    assert [a for j, a, _ in platform.commands if j == second["native_id"]] == ["hold", "release"]
    await api.call("DELETE", f"jobs/{second['id']}")
    await api.wait(second["id"], TERMINAL, timeout=30)


async def test_start_an_off_cluster(api, platform, jp_serverapp, workdir):
    events: list[tuple[str, str]] = []
    service_of(jp_serverapp).subscribe(
        lambda kind, data: (
            events.append((data["cluster"], data["status"])) if kind == "cluster" else None
        )
    )
    status, answer = await api.call("POST", "clusters/pw-cold/start")
    assert status == 202 and answer["status"] == "starting", answer
    await wait_cluster(api, "pw-cold", "ok")
    mine = [s for c, s in events if c == "pw-cold"]
    # Added as off, then the progress until it is on.
    assert mine[0] == "off" and "starting" in mine and mine[-1] == "ok", mine
    assert platform.requests["POST clusters/{name}/resume"] == 1
    for cluster_id in ("pw-cold", "pw-hpc", "local"):
        status, answer = await api.call("POST", f"clusters/{cluster_id}/start")
        assert status == 409, (cluster_id, answer)
    status, _ = await api.call("POST", "clusters/nope/start")
    assert status == 404
    # Once on, it takes jobs like the others; both clusters are watched by one request.
    pollers = [service_of(jp_serverapp).pollers[c] for c in ("pw-cold", "pw-hpc")]
    asked, polls = platform.requests["GET scheduler-jobs"], sum(p.polls for p in pollers)
    jobs = [
        await api.submit(cluster=c, working_dir=str(workdir), command="sleep 3; echo on")
        for c in ("pw-cold", "pw-hpc")
    ]
    for job in jobs:
        done = await api.wait(job["id"], TERMINAL, timeout=60)
        assert done["state"] == "COMPLETED", done
        assert await api.read_all(job["id"]) == "on\n"
    asked = platform.requests["GET scheduler-jobs"] - asked
    polls = sum(p.polls for p in pollers) - polls
    assert polls >= 6 and asked <= 0.7 * polls, (asked, polls)


@pytest.mark.parametrize("api_key", ["wrong-secret"], indirect=True)
async def test_a_bad_key_is_a_clear_cluster_error(api, platform, caplog):
    clusters = clusters_by_id(await api.get("clusters"))
    entry = clusters["pw"]
    assert entry["status"] == "auth_rejected", entry
    assert "API key rejected" in entry["status_message"], entry
    assert not [c for c in clusters if c.startswith("pw-")]
    status, body = await api.call("GET", "clusters/pw")
    assert status == 503 and "API key rejected" in body["message"], body
    status, body = await api.call("POST", "jobs", {"cluster": "pw", "command": "true"})
    assert status == 503 and "API key rejected" in body["message"], body
    assert platform.requests["GET clusters"] >= 1
    for record in caplog.records:
        assert "wrong-secret" not in record.getMessage()
        assert record.exc_info is None, record.getMessage()


async def test_platform_unreachable_keeps_everything(api, platform, workdir):
    job = await api.submit(
        cluster="pw-hpc", working_dir=str(workdir), command="sleep 4; echo survived"
    )
    await api.wait(job["id"], {"RUNNING"}, timeout=30)
    platform.pause()
    try:
        hpc = await wait_cluster(api, "pw-hpc", "unreachable", timeout=20)
        assert "platform unreachable" in hpc["status_message"], hpc
        assert "kept" in hpc["status_message"]
        clusters = clusters_by_id(await api.get("clusters"))
        assert {"pw-hpc", "pw-cold", "pw-proxied"} <= set(clusters)  # nothing dropped
        assert (await api.get(f"jobs/{job['id']}"))["state"] == "RUNNING"  # nor failed
        # Its detail still answers from the partitions already known, with the status.
        detail = await api.get("clusters/pw-hpc")
        assert detail["status"] == "unreachable" and detail["partitions"]
    finally:
        platform.resume()
    await wait_cluster(api, "pw-hpc", "ok", timeout=20)
    done = await api.wait(job["id"], TERMINAL, timeout=60)
    assert (done["state"], done["exit_code"]) == ("COMPLETED", 0), done
    assert await api.read_all(job["id"]) == "survived\n"


async def test_platform_down_at_start_then_back(api, platform):
    platform.pause()
    try:
        entry = clusters_by_id(await api.get("clusters"))["pw"]
        assert entry["status"] == "unreachable", entry
        assert "platform unreachable" in entry["status_message"], entry
    finally:
        platform.resume()
    await wait_cluster(api, "pw-hpc", "ok")
    assert "pw" not in clusters_by_id(await api.get("clusters"))
