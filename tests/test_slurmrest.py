"""The ``slurmrest`` backend beyond the contract test, against the dev cluster's slurmrestd:
tokens (refresh, rejection, never leaked), clusters without a transport, cheap watching. The API
versions it cannot serve: test_slurmrest_spec.py and test_slurmrest_fake.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallelworks_lab.backends.base import BackendContext, SubmitRequest
from parallelworks_lab.backends.slurmrest import SlurmRestBackend
from parallelworks_lab.errors import ClusterUnreachable
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.states import JobState

from .support.api import server_config
from .support.service import wait_terminal
from .support.slurm_cluster import slurm_cluster_entry

GARBAGE = "garbage-token-3f9c2e"


# -- helpers -----------------------------------------------------------------------------------


def token_command(info: dict[str, Any], lifespan: int) -> list[str]:
    """The test cluster's ``scontrol token ...`` with another lifespan."""
    argv = info["rest"]["token_command"]
    return [a if not a.startswith("lifespan=") else f"lifespan={lifespan}" for a in argv]


def mint_token(info: dict[str, Any], lifespan: int) -> str:
    out = subprocess.run(
        token_command(info, lifespan),
        env={**os.environ, **info["rest"]["token_command_env"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return out.split("=", 1)[1] if out.startswith("SLURM_JWT=") else out


def rest_entry(info: dict[str, Any], cluster_id: str = "rest", **changes: Any) -> dict[str, Any]:
    entry = slurm_cluster_entry("slurmrest", info) | {"id": cluster_id}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def backend_from(entry: dict[str, Any], tmp_path: Path) -> SlurmRestBackend:
    options = {k: v for k, v in entry.items() if k not in ("id", "kind", "poll_interval")}
    context = BackendContext(cluster_id=entry["id"], state_dir=tmp_path, root_dir=tmp_path)
    backend = SlurmRestBackend.from_config(options, context)
    assert isinstance(backend, SlurmRestBackend)
    return backend


def workdir_in(info: dict[str, Any]) -> Path:
    path = Path(info["scratch_dir"]) / f"r-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    os.chmod(path, 0o777)
    return path


# -- live: tokens ------------------------------------------------------------------------------


async def test_short_lived_token_expires_mid_job_and_work_continues(slurm_cluster, job_service):
    """Tokens live 4 s; the job runs for 9: the backend fetches new ones before each expires."""
    entry = rest_entry(slurm_cluster, token={"command": token_command(slurm_cluster, 4)})
    workdir = workdir_in(slurm_cluster)
    service = await job_service([entry], root_dir=workdir, poll_interval=0.5)
    backend = service.clusters["rest"].backend
    assert isinstance(backend, SlurmRestBackend)
    job = await service.submit(
        JobSubmit(cluster="rest", command="sleep 9; echo done", working_dir=str(workdir))
    )
    done = await wait_terminal(service, job.id)
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), done
    assert (await service.read_log(job.id)).data == "done\n"
    assert backend.tokens.fetches >= 3, backend.tokens.fetches
    assert service.list_clusters()[0].status == "ok"


async def test_expired_token_is_replaced_once_when_rejected(slurm_cluster, tmp_path):
    """The cluster says no before we expected it to: one new token, and the call goes through."""
    entry = rest_entry(slurm_cluster, token={"command": token_command(slurm_cluster, 2)})
    backend = backend_from(entry, tmp_path)
    try:
        await backend.discover()
        assert backend.tokens.fetches == 1
        await asyncio.sleep(3.2)  # slurmctld refuses it from exp + 1 s
        backend.tokens._expires_at = time.time() + 3600  # as if its expiry were unknown to us
        partitions = await backend.discover()
        assert {p.name for p in partitions} == {"debug", "gpu", "multi", "proj"}
        assert backend.tokens.fetches == 2
    finally:
        await backend.close()


async def test_token_problems_are_named_without_the_token(slurm_cluster, tmp_path):
    backend = backend_from(rest_entry(slurm_cluster, token={"value": GARBAGE}), tmp_path)
    try:
        with pytest.raises(ClusterUnreachable) as err:
            await backend.discover()
        assert "token rejected" in err.value.message and GARBAGE not in err.value.message
        assert backend.tokens.fetches == 1
        await backend.close()
        # A token command that fails says why, without repeating anything token-like.
        failing = ["sh", "-c", "echo error: aaaaaaaaaa.bbbbbbbbbb.cccccccccc >&2; exit 3"]
        backend = backend_from(rest_entry(slurm_cluster, token={"command": failing}), tmp_path)
        with pytest.raises(ClusterUnreachable) as err:
            await backend.discover()
        assert "token command 'sh' failed (exit 3): error: <token>" in err.value.message
        await backend.close()
        # A token minted for another user is refused before it is ever sent.
        root_token = ["scontrol", "token", "username=root", "lifespan=60"]
        backend = backend_from(rest_entry(slurm_cluster, token={"command": root_token}), tmp_path)
        with pytest.raises(ClusterUnreachable) as err:
            await backend.discover()
        assert "token is for Slurm user 'root', not 'pwlab'" in err.value.message
        assert backend.requests == 0
    finally:
        await backend.close()


# -- live: through the server ------------------------------------------------------------------


@pytest.fixture
def token_file(slurm_cluster, tmp_path) -> tuple[Path, str]:
    token = mint_token(slurm_cluster, 600)
    path = tmp_path / "token"
    path.write_text(f"SLURM_JWT={token}\n")
    path.chmod(0o600)
    return path, token


@pytest.fixture
def jp_server_config(tmp_path, slurm_cluster, token_file):
    info = slurm_cluster
    clusters = [
        rest_entry(info, "rest-file", token={"file": str(token_file[0])}),
        rest_entry(info, "rest-bad", token={"value": GARBAGE}),
        rest_entry(
            info,
            "rest-nolog",
            token={"file": str(token_file[0])},
            transport=None,
            env=None,
            working_dir=info["scratch_dir"],
        ),
    ]
    return server_config(tmp_path, clusters)


async def test_garbage_token_gives_a_clear_cluster_error(api, slurm_cluster):
    status, answer = await api.call("GET", "clusters/rest-bad")
    assert status == 503 and "token rejected" in answer["message"], answer
    await asyncio.sleep(1)  # several poller rounds: the status must not drift back to "ok"
    clusters = {c["id"]: c for c in (await api.get("clusters"))["clusters"]}
    bad = clusters["rest-bad"]
    assert bad["status"] == "auth_rejected" and "token rejected" in bad["status_message"], bad
    assert clusters["rest-file"]["status"] == "ok"
    status, answer = await api.call(
        "POST", "jobs", {"cluster": "rest-bad", "command": "true", "working_dir": "/tmp"}
    )
    assert status == 503 and "token rejected" in answer["message"], answer
    assert GARBAGE not in json.dumps(answer)


async def test_tokens_never_reach_logs_or_answers(api, slurm_cluster, token_file, caplog):
    """Run jobs with a real token and look for it everywhere the server writes."""
    caplog.set_level(logging.DEBUG)
    _, token = token_file
    workdir = workdir_in(slurm_cluster)
    answers = [await api.get("clusters"), await api.get("clusters/rest-file")]
    job = await api.submit(
        cluster="rest-file", command="echo hi; echo oops >&2", working_dir=str(workdir)
    )
    done = await api.wait(job["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "COMPLETED", done
    answers += [done, await api.get("jobs"), await api.get(f"jobs/{job['id']}/logs")]
    _, refused = await api.call(
        "POST",
        "jobs",
        {
            "cluster": "rest-file",
            "command": "true",
            "working_dir": str(workdir),
            "resources": {"memory_mb": 10**9},
        },
    )
    answers.append(refused)
    assert answers[-2]["data"] == "hi\n"
    text = "\n".join(json.dumps(a) for a in answers)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    # The server did log, down to every request to slurmrestd.
    assert any("/slurm/v0.0.38/jobs" in r.getMessage() for r in caplog.records if r.name == "httpx")
    for secret in (token, token.split(".")[2], GARBAGE):
        assert secret not in text
        assert secret not in logged


async def test_without_a_transport_the_job_says_where_its_output_is(api, slurm_cluster):
    job = await api.submit(cluster="rest-nolog", command="echo quiet")
    assert job["working_dir"] == slurm_cluster["scratch_dir"]
    done = await api.wait(job["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["state"] == "COMPLETED", done
    assert "no 'transport'" in done["reason"] and done["stdout_path"], done
    status, answer = await api.call("GET", f"jobs/{job['id']}/logs")
    assert status == 409 and "no transport" in answer["message"], answer
    assert done["stdout_path"] in answer["message"]
    # Relative working directories are resolved against the configured 'working_dir'.
    sub = workdir_in(slurm_cluster)
    status, answer = await api.call(
        "POST", "jobs", {"cluster": "rest-nolog", "command": "true", "working_dir": f"~/{sub.name}"}
    )
    assert status == 201 and answer["working_dir"] == str(sub), answer
    await api.wait(answer["id"], {"COMPLETED"}, timeout=60)


# -- live: watching is cheap -------------------------------------------------------------------


async def test_one_jobs_request_per_poll_and_unchanged_queues_cost_little(slurm_cluster, tmp_path):
    backend = backend_from(rest_entry(slurm_cluster), tmp_path)
    seen: list[tuple[str, int, str]] = []

    async def record(response: httpx.Response) -> None:
        seen.append(
            (response.request.url.path, response.status_code, response.request.url.query.decode())
        )

    try:
        backend._http().event_hooks["response"].append(record)
        workdir = workdir_in(slurm_cluster)
        jobs = []
        for n in range(3):
            request = SubmitRequest(
                job_id=uuid.uuid4().hex[:12],
                submit_token=uuid.uuid4().hex,
                name=f"cheap{n}",
                script="#!/bin/bash\nsleep 30\n",
                resources=ResourceRequest(array="1-2") if n == 0 else ResourceRequest(),
                working_dir=str(workdir),
            )
            jobs.append((await backend.submit(request)).native_id)
        before = backend.requests
        statuses = await backend.poll(jobs)
        assert backend.requests == before + 1
        assert set(statuses) >= {*jobs, f"{jobs[0]}_1", f"{jobs[0]}_2"}
        assert statuses[f"{jobs[0]}_1"].parent_native_id == jobs[0]
        # With nothing changing, slurmrestd answers "not modified" (another user's activity
        # on this shared cluster may change the queue now and then).
        await asyncio.sleep(3)
        seen.clear()
        for _ in range(15):
            await backend.poll(jobs)
            await asyncio.sleep(0.3)
        paths = [p for p, _, _ in seen]
        assert paths == [p for p in paths if p.endswith("/jobs")] and len(paths) == 15
        assert all("update_time=" in q for _, _, q in seen)
        assert any(code == 304 for _, code, _ in seen), seen
        for native_id in jobs:
            await backend.cancel(native_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = await backend.poll(jobs)
            if all(statuses[n].state is JobState.CANCELLED for n in jobs):
                break
            await asyncio.sleep(0.3)
        assert {statuses[n].state for n in jobs} == {JobState.CANCELLED}
    finally:
        await backend.close()
