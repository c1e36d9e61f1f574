"""The slurmrest backend end to end against a fake newer slurmrestd whose every request and
answer is checked against that version's published spec."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallelworks_lab.backends.base import BackendContext, SubmitRequest
from parallelworks_lab.backends.slurmrest import SlurmRestBackend
from parallelworks_lab.backends.slurmrest_versions import ADAPTERS
from parallelworks_lab.errors import ClusterUnreachable, Conflict, InvalidRequest
from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.states import JobState

from .support.slurmrest_specs import NEAREST_SPECS, check, spec

# -- a fake newer slurmrestd, answering from the spec's shapes ---------------------------------


def nv(number: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": number}


UNSET = {"set": False, "infinite": False, "number": 0}
INFINITE = {"set": False, "infinite": True, "number": 0}
NOW = 1_780_000_000


def exit_code(status: str, code: int = 0, signal: int = 0) -> dict[str, Any]:
    return {
        "status": [status],
        "return_code": nv(code) if status != "PENDING" else UNSET,
        "signal": {"id": nv(signal) if signal else UNSET, "name": "TERM" if signal else ""},
    }


def job_info(version: str, job_id: int, state: list[str], **fields: Any) -> dict[str, Any]:
    info = {
        "job_id": job_id,
        "name": f"job{job_id}",
        "user_name": "alice",
        "partition": "debug",
        "job_state": state,
        "state_reason": "None",
        "array_job_id": nv(0),
        "array_task_id": UNSET,
        "array_task_string": "",
        "comment": f"pwlab:token-{job_id}",
        "current_working_directory": "/home/alice/w",
        "standard_output": "/home/alice/w/pwlab-%j.out",
        "standard_error": "/home/alice/w/pwlab-%j.err",
        "exit_code": exit_code("PENDING"),
        "submit_time": nv(NOW - 60),
        "start_time": nv(NOW + 600),
        "end_time": nv(NOW + 1200),
    }
    info.update(fields)
    if version >= "v0.0.44":  # 25.11 also gives the paths with their patterns filled in
        array_job = info["array_job_id"]["number"] or job_id
        task = info["array_task_id"]["number"] if info["array_task_id"]["set"] else 4294967294
        for key, short in (("standard_output", "stdout"), ("standard_error", "stderr")):
            expanded = info[key].replace("%j", str(job_id)).replace("%A", str(array_job))
            info[f"{short}_expanded"] = expanded.replace("%a", str(task))
    return info


class FakeSlurmrestd:
    """Just enough of a v0.0.4x slurmrestd: every request body and every answer is checked
    against the spec, so the backend is exercised on shapes the test cluster cannot serve."""

    def __init__(self, version: str, token: str) -> None:
        self.version = version
        self.specs = NEAREST_SPECS[version]
        self.token = token
        self.changed = NOW
        self.requests: list[tuple[str, str, str]] = []
        self.history: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {
            100: job_info(
                version,
                100,
                ["PENDING"],
                state_reason="Resources",
                array_job_id=nv(100),
                array_task_string="2-3",
                standard_output="/home/alice/w/pwlab-%A_%a.out",
                standard_error="/home/alice/w/pwlab-%A_%a.err",
                comment="pwlab:token-array",
            ),
            101: job_info(
                version,
                101,
                ["RUNNING"],
                array_job_id=nv(100),
                array_task_id=nv(1),
                standard_output="/home/alice/w/pwlab-%A_%a.out",
                standard_error="/home/alice/w/pwlab-%A_%a.err",
                start_time=nv(NOW - 30),
                comment="pwlab:token-array",
            ),
            102: job_info(
                version,
                102,
                ["FAILED"],
                state_reason="NonZeroExitCode",
                exit_code=exit_code("ERROR", 3),
                start_time=nv(NOW - 50),
                end_time=nv(NOW - 40),
            ),
            103: job_info(
                version,
                103,
                ["CANCELLED"],
                exit_code=exit_code("SIGNALED", 0, 15),
                start_time=nv(NOW - 50),
                end_time=nv(NOW - 45),
            ),
            104: job_info(version, 104, ["PENDING"], state_reason="JobHeldUser", hold=True),
            105: job_info(
                version, 105, ["COMPLETED", "COMPLETING"], exit_code=exit_code("SUCCESS", 0)
            ),
            106: job_info(version, 106, ["RUNNING"], user_name="bob", comment="bob's"),
        }

    def answer(self, schema: str, body: dict[str, Any], status: int = 200) -> httpx.Response:
        body = {"meta": {"plugin": {"data_parser": self.version}}, **body}
        body.setdefault("errors", [])
        body.setdefault("warnings", [])
        for spec_version in self.specs:
            check(
                spec_version,
                schema,
                json.loads(json.dumps(body).replace(self.version, spec_version)),
            )
        return httpx.Response(status, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        v = self.version
        path = request.url.path
        self.requests.append((request.method, path, request.url.query.decode()))
        if request.headers.get("X-SLURM-USER-NAME") != "alice":
            return httpx.Response(401)
        if request.headers.get("X-SLURM-USER-TOKEN") != self.token:
            return httpx.Response(401, text="Authentication failure")
        body = json.loads(request.content) if request.content else None
        if path == "/openapi/v3":
            served = spec(self.specs[-1])["paths"]
            return httpx.Response(
                200, json={"paths": {p.replace(self.specs[-1], v): {} for p in served}}
            )
        if path == f"/slurm/{v}/ping/":
            return httpx.Response(200, json={"pings": [{"hostname": "ctl", "pinged": "UP"}]})
        if path == f"/slurm/{v}/partitions/":
            return self.answer(
                "openapi_partition_resp", {"partitions": PARTITIONS, "last_update": nv(NOW)}
            )
        if path == f"/slurm/{v}/nodes/":
            return self.answer("openapi_nodes_resp", {"nodes": NODES, "last_update": nv(NOW)})
        if path == f"/slurm/{v}/jobs/":
            since = request.url.params.get("update_time")
            if since is not None and int(since) - 1 >= self.changed:
                warning = {
                    "description": f"No job changes since update_time[{since}]",
                    "source": "x",
                }
                return self.answer(
                    "openapi_job_info_resp",
                    {
                        "jobs": [],
                        "last_backfill": UNSET,
                        "last_update": UNSET,
                        "warnings": [warning],
                    },
                )
            jobs = list(self.jobs.values())
            return self.answer(
                "openapi_job_info_resp",
                # last_update is when the controller packed the list: after the last change.
                {"jobs": jobs, "last_backfill": nv(NOW), "last_update": nv(self.changed + 1)},
            )
        if path == f"/slurm/{v}/job/submit":
            for spec_version in self.specs:
                check(spec_version, "job_submit_req", body)
            job = body["job"]
            if job.get("partition") == "nope":
                error = {
                    "description": "Batch job submission failed",
                    "error_number": 2000,
                    "error": "Invalid partition name specified",
                    "source": "slurm_submit_batch_job()",
                }
                return self.answer("openapi_job_submit_response", {"errors": [error]}, 500)
            job_id = max(self.jobs) + 1
            self.changed += 1
            self.jobs[job_id] = job_info(
                v,
                job_id,
                ["PENDING"],
                comment=job["comment"],
                standard_output=job["standard_output"],
                standard_error=job["standard_error"],
            )
            return self.answer(
                "openapi_job_submit_response",
                {"job_id": job_id, "step_id": "batch", "job_submit_user_msg": ""},
            )
        if path.startswith(f"/slurmdb/{v}/job/"):
            job_id = int(path.rsplit("/", 1)[1])
            if job_id not in self.history:
                error = {"error_number": 2017, "error": "Invalid job id specified"}
                return self.answer(
                    "openapi_slurmdbd_jobs_resp", {"jobs": [], "errors": [error]}, 500
                )
            return self.answer("openapi_slurmdbd_jobs_resp", {"jobs": [self.history[job_id]]})
        if path.startswith(f"/slurm/{v}/job/"):
            job_id = int(path.rsplit("/", 1)[1])
            record = self.jobs[job_id]
            self.changed += 1
            if request.method == "DELETE":
                record["job_state"] = ["CANCELLED"]
                record["exit_code"] = exit_code("SIGNALED", 0, 9)
                return self.answer("openapi_kill_job_resp", {"status": []})
            for spec_version in self.specs:
                check(spec_version, "job_desc_msg", body)
            record["state_reason"] = "JobHeldUser" if body["hold"] else "None"
            result = {"job_id": job_id, "step_id": "", "error": "", "error_code": 0, "why": ""}
            return self.answer("openapi_job_post_response", {"results": [result]})
        return httpx.Response(404)


PARTITIONS = [
    {
        "name": "debug",
        "partition": {"state": ["UP"]},
        "maximums": {"time": nv(30), "nodes": INFINITE},
        "nodes": {"configured": "n[0-1]", "total": 2},
        "cpus": {"total": 16},
    },
    {
        "name": "gpu",
        "partition": {"state": ["UP"]},
        "maximums": {"time": INFINITE, "nodes": nv(1)},
        "nodes": {"configured": "g0", "total": 1},
        "accounts": {"allowed": "physics,chem", "deny": ""},
        "qos": {"allowed": "ALL", "deny": "scavenger", "assigned": ""},
    },
    {"name": "closed", "partition": {"state": ["DOWN"]}, "maximums": {"time": nv(60)}},
]
NODES = [
    {
        "name": "n0",
        "state": ["IDLE"],
        "cpus": 8,
        "alloc_cpus": 0,
        "real_memory": 16000,
        "gres": "",
        "partitions": ["debug"],
    },
    {
        "name": "n1",
        "state": ["MIXED"],
        "cpus": 8,
        "alloc_cpus": 3,
        "real_memory": 16000,
        "gres": "",
        "partitions": ["debug"],
    },
    {
        "name": "g0",
        "state": ["IDLE", "DRAIN"],
        "cpus": 32,
        "alloc_cpus": 0,
        "real_memory": 64000,
        "gres": "gpu:a100:4(S:0-1)",
        "partitions": ["gpu"],
    },
]


@asynccontextmanager
async def fake_backend(
    version: str, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[SlurmRestBackend, FakeSlurmrestd]]:
    fake = FakeSlurmrestd(version, token="good-token")
    options = {"url": "http://slurm.example", "user": "alice", "token": {"value": "good-token"}}
    options.update(settings)
    context = BackendContext(cluster_id="fake", state_dir=tmp_path, root_dir=tmp_path)
    backend = SlurmRestBackend.from_config(options, context)
    assert isinstance(backend, SlurmRestBackend)
    backend._client = httpx.AsyncClient(
        transport=httpx.MockTransport(fake), base_url="http://slurm.example"
    )
    try:
        yield backend, fake
    finally:
        await backend.close()


def submit_request(**resources: Any) -> SubmitRequest:
    return SubmitRequest(
        job_id=uuid.uuid4().hex[:12],
        submit_token=uuid.uuid4().hex,
        name="fake",
        script="#!/bin/bash\necho hi\n",
        resources=ResourceRequest(**resources),
        working_dir="/home/alice/w",
        env={"X": "1"},
        after_native_ids=["102"],
    )


@pytest.mark.parametrize("version", sorted(NEAREST_SPECS))
async def test_newer_versions_end_to_end_against_a_spec_checked_fake(version, tmp_path):
    async with fake_backend(version, tmp_path, default_partition="debug") as (backend, fake):
        await backend.start()
        assert backend.api_version == version
        parts = {p.name: p for p in await backend.discover()}
        debug, gpu = parts["debug"], parts["gpu"]
        assert debug.default and not gpu.default
        assert (debug.max_time_minutes, debug.max_nodes, debug.nodes_total) == (30, None, 2)
        assert (debug.nodes_idle, debug.cpus_idle, debug.cpus_per_node) == (1, 13, 8)
        assert (gpu.max_time_minutes, gpu.max_nodes, gpu.nodes_idle) == (None, 1, 0)
        assert (gpu.gpus_per_node, gpu.gpu_types, gpu.cpus_idle) == (4, ["a100"], 0)
        assert parts["closed"].state == "down"
        assert (parts["gpu"].accounts, parts["gpu"].qos, parts["gpu"].deny_qos) == (
            ["physics", "chem"],
            [],
            ["scavenger"],
        )
        assert parts["debug"].accounts == []

        statuses = await backend.poll(["100", "102", "103", "104", "105"])
        assert "106" not in statuses  # another user's job is never reported
        assert (statuses["102"].state, statuses["102"].exit_code) == (JobState.FAILED, 3)
        assert statuses["102"].ended_at is not None
        assert (statuses["103"].state, statuses["103"].exit_code) == (JobState.CANCELLED, 143)
        assert statuses["104"].state is JobState.HELD
        assert statuses["105"].state is JobState.COMPLETING
        assert statuses["105"].raw_state == "COMPLETED,COMPLETING"
        assert (
            statuses["100"].state is JobState.RUNNING and statuses["100"].reason == "0/3 tasks done"
        )
        task1, task3 = statuses["100_1"], statuses["100_3"]
        assert (task1.state, task1.parent_native_id, task1.array_task) == (
            JobState.RUNNING,
            "100",
            "1",
        )
        assert task1.stdout_path == "/home/alice/w/pwlab-100_1.out"
        assert task1.started_at is not None and task3.started_at is None
        assert (task3.state, task3.stderr_path) == (
            JobState.QUEUED,
            "/home/alice/w/pwlab-100_3.err",
        )

        # Unchanged queue: the next poll is answered "no change" and costs no parsing.
        fake.requests.clear()
        again = await backend.poll(["102"])
        assert again["102"].state is JobState.FAILED
        assert fake.requests == [("GET", f"/slurm/{version}/jobs/", f"update_time={NOW + 1}")]

        request = submit_request(partition="debug", gpus=1, memory_mb=100)
        result = await backend.submit(request)
        assert result.stdout_path == f"/home/alice/w/pwlab-{result.native_id}-{request.job_id}.out"
        found = await backend.find_by_token(fake.jobs[int(result.native_id)]["comment"][6:])
        assert found is not None and found.native_id == result.native_id
        await backend.hold(result.native_id)
        assert (await backend.poll([result.native_id]))[result.native_id].state is JobState.HELD
        await backend.release(result.native_id)
        assert (await backend.poll([result.native_id]))[result.native_id].state is JobState.QUEUED
        await backend.cancel(result.native_id)
        assert (await backend.poll([result.native_id]))[
            result.native_id
        ].state is JobState.CANCELLED

        # Jobs that left the list before their end was seen: slurmdbd knows, or nobody does.
        del fake.jobs[104]
        fake.changed += 1
        fake.history[104] = {
            "job_id": 104,
            "user": "alice",
            "state": {"current": ["CANCELLED"], "reason": "None"},
            "exit_code": exit_code("SIGNALED", 0, 15),
            "time": {"start": 0, "end": NOW - 5, "submission": NOW - 60},
            "array": {"job_id": 0, "task_id": UNSET},
            "comment": {"job": "pwlab:token-104"},
        }
        gone = await backend.poll(["104", "999"])
        assert (gone["104"].state, gone["104"].exit_code) == (JobState.CANCELLED, 143)
        assert gone["999"].state is JobState.UNKNOWN and "LeftQueue" in (gone["999"].reason or "")
        fake.requests.clear()
        assert (await backend.poll(["999"]))["999"].state is JobState.UNKNOWN
        assert [p for _, p, _ in fake.requests] == [
            f"/slurm/{version}/jobs/",
            f"/slurmdb/{version}/job/999",
        ]

        with pytest.raises(InvalidRequest) as err:
            await backend.submit(submit_request(partition="nope"))
        assert err.value.errors[0].field == "resources.partition"
        assert (
            "Invalid partition name specified" in err.value.message and "nope" in err.value.message
        )
        with pytest.raises(Conflict) as conflict:
            await backend.read_log("/home/alice/w/pwlab-102.out", 0, 100)
        assert "no transport" in conflict.value.message


async def test_newer_versions_say_token_rejected_on_401(tmp_path):
    async with fake_backend("v0.0.44", tmp_path, token={"value": "expired"}) as (backend, _):
        with pytest.raises(ClusterUnreachable) as err:
            await backend.start()
        assert "token rejected" in err.value.message and "expired" not in err.value.message


async def test_unsupported_versions_are_named(tmp_path):
    async with fake_backend("v0.0.44", tmp_path, api_version="v0.0.38") as (backend, _):
        with pytest.raises(ClusterUnreachable) as err:
            await backend.discover()
        assert "serves v0.0.44" in err.value.message and "v0.0.38" in err.value.message


def test_every_adapter_is_a_supported_version():
    assert sorted(ADAPTERS) == ["v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44"]
