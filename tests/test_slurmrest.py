"""The ``slurmrest`` backend beyond the contract test: tokens (refresh, rejection, never leaked),
clusters without a transport, cheap watching, and the API versions the test cluster cannot serve
(request bodies validated against the published specs, example answers parsed)."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from parallelworks_lab.backends.base import BackendContext, SubmitRequest
from parallelworks_lab.backends.slurmrest import SlurmRestBackend, jwt_claims
from parallelworks_lab.backends.slurmrest_versions import (
    ADAPTERS,
    JobDescription,
    adapter_for,
    expand_array_spec,
    pick_version,
    read_exit_code,
    read_number,
    served_versions,
)
from parallelworks_lab.errors import ClusterUnreachable, Conflict, InvalidRequest
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.service import JobService
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore

from .support.api import server_config
from .support.slurm_cluster import slurm_cluster_entry

DATA = Path(__file__).parent / "data" / "slurmrest"
SPEC_VERSIONS = ("v0.0.42", "v0.0.44")
# Versions without a spec here are checked against their neighbours' specs.
NEAREST_SPECS = {
    "v0.0.40": ("v0.0.42",),
    "v0.0.41": ("v0.0.42",),
    "v0.0.42": ("v0.0.42",),
    "v0.0.43": ("v0.0.42", "v0.0.44"),
    "v0.0.44": ("v0.0.44",),
}
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


@asynccontextmanager
async def running(entry: dict[str, Any], tmp_path: Path, root: Path) -> AsyncIterator[JobService]:
    service = JobService(
        JobStore(tmp_path / "jobs.sqlite"),
        clusters=[entry],
        state_dir=tmp_path,
        root_dir=root,
        poll_interval=0.5,
        log=logging.getLogger("test"),
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def wait_terminal(service: JobService, job_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not service.get_job(job_id).terminal:
        assert time.monotonic() < deadline, service.get_job(job_id)
        await asyncio.sleep(0.2)
    return service.get_job(job_id)


def workdir_in(info: dict[str, Any]) -> Path:
    path = Path(info["scratch_dir"]) / f"r-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    os.chmod(path, 0o777)
    return path


# -- live: tokens ------------------------------------------------------------------------------


async def test_short_lived_token_expires_mid_job_and_work_continues(slurm_cluster, tmp_path):
    """Tokens live 4 s; the job runs for 9: the backend fetches new ones before each expires."""
    entry = rest_entry(slurm_cluster, token={"command": token_command(slurm_cluster, 4)})
    workdir = workdir_in(slurm_cluster)
    async with running(entry, tmp_path, workdir) as service:
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


# -- versions: unit ----------------------------------------------------------------------------


def test_version_choice():
    assert pick_version(["v0.0.36", "v0.0.37", "v0.0.38"]) == "v0.0.38"
    assert pick_version(["v0.0.40", "v0.0.41", "v0.0.42"]) == "v0.0.42"
    assert pick_version(["v0.0.43", "v0.0.44", "v0.0.45"]) == "v0.0.44"
    assert pick_version(["v0.0.39"]) is None
    assert pick_version(["v0.0.40", "v0.0.42"], pinned="v0.0.40") == "v0.0.40"
    assert pick_version(["v0.0.42"], pinned="v0.0.40") is None
    for version in SPEC_VERSIONS:
        assert served_versions(spec(version)) == [version]
    assert served_versions(spec("v0.0.38")) == ["v0.0.38"]


def test_readers():
    assert read_number({"set": True, "infinite": False, "number": 30}) == 30
    assert read_number({"set": False, "infinite": False, "number": 0}) is None
    assert read_number({"set": True, "infinite": True, "number": 0}) is None
    assert read_number(4294967295) is None and read_number(-1) is None and read_number(7) == 7
    assert read_exit_code(768) == 3 and read_exit_code(15) == 143
    assert read_exit_code({"status": ["ERROR"], "return_code": {"set": True, "number": 3}}) == 3
    signaled = {"status": ["SIGNALED"], "signal": {"id": {"set": True, "number": 9}}}
    assert read_exit_code(signaled) == 137
    assert expand_array_spec("1-3,7,10-20:5%2") == [1, 2, 3, 7, 10, 15, 20]
    token = "e30." + "eyJleHAiOjE3MDAwMDAwMDAsInN1biI6InB3bGFiIn0" + ".c2ln"
    assert jwt_claims(token) == {"exp": 1700000000, "sun": "pwlab"}
    assert jwt_claims("not-a-jwt") == {}


# -- versions: against the specs ---------------------------------------------------------------


@functools.cache
def spec(version: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{version}.json").read_text())
    return data


def _strict(node: Any) -> Any:
    """Unknown keys become errors: the specs allow any extra key, we want to know of typos."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def _strict_components(version: str) -> dict[str, Any]:
    components: dict[str, Any] = _strict(copy.deepcopy(spec(version)["components"]))
    return components


def check(version: str, schema: str, instance: Any, *, partial: bool = False) -> None:
    """Validate ``instance`` against ``components.schemas[<version>_<schema>]``, strictly
    (``partial``: an update, which need not have the keys a submission must have)."""
    root = {"$ref": f"#/components/schemas/{version}_{schema}"}
    root["components"] = _strict_components(version)  # type: ignore[assignment]
    errors = sorted(jsonschema.Draft7Validator(root).iter_errors(instance), key=str)
    if partial:
        errors = [e for e in errors if e.validator != "required" or e.absolute_path]
    assert not errors, f"{version} {schema}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


def full_description(**changes: Any) -> JobDescription:
    fields: dict[str, Any] = {
        "name": "everything",
        "script": "#!/bin/bash\necho hi\n",
        "working_dir": "/home/alice/w",
        "stdout": "/home/alice/w/pwlab-%A_%a.out",
        "stderr": "/home/alice/w/pwlab-%A_%a.err",
        "comment": "pwlab:0123abcd",
        "environment": {"PATH": "/usr/bin:/bin", "GREETING": "a b=c"},
        "partition": "gpu",
        "nodes": 2,
        "ntasks": 4,
        "cpus_per_task": 2,
        "gpus": 2,
        "memory_mb": 4000,
        "time_limit_minutes": 30,
        "array": "1-10%2",
        "dependency": "afterok:12:13",
        "account": "physics",
        "qos": "high",
    }
    fields.update(changes)
    return JobDescription(**fields)


@pytest.mark.parametrize("version", sorted(NEAREST_SPECS))
def test_request_bodies_match_the_spec(version):
    adapter = adapter_for(version)
    minimal = full_description(
        partition=None,
        gpus=0,
        memory_mb=None,
        time_limit_minutes=None,
        array=None,
        dependency=None,
        account=None,
        qos=None,
    )
    for desc in (full_description(), minimal):
        body = adapter.submit_body(desc)
        job = body["job"]
        assert job["environment"] == ["PATH=/usr/bin:/bin", "GREETING=a b=c"]
        for spec_version in NEAREST_SPECS[version]:
            check(spec_version, "job_submit_req", body)
            check(spec_version, "job_desc_msg", adapter.hold_body(True))
    job = adapter.submit_body(full_description())["job"]
    assert job["time_limit"] == {"set": True, "infinite": False, "number": 30}
    assert job["memory_per_node"]["number"] == 4000 and job["tres_per_job"] == "gres/gpu:2"
    assert (job["minimum_nodes"], job["maximum_nodes"], job["tasks"]) == (2, 2, 4)
    assert (job["account"], job["qos"]) == ("physics", "high")
    assert adapter.path("jobs") == f"/slurm/{version}/jobs/"
    assert f"/slurm/{version}/jobs/".replace(version, "v0.0.42") in spec("v0.0.42")["paths"]


def test_v0_0_38_request_bodies_match_the_served_spec():
    adapter = adapter_for("v0.0.38")
    body = adapter.submit_body(full_description())
    assert body["job"]["environment"] == {"PATH": "/usr/bin:/bin", "GREETING": "a b=c"}
    # The spec says nodes is [min, max]; slurmrestd 22.05 ignores that form (a 3-node job ran
    # on one node, live-tested) and honours "N": the one knowing deviation.
    assert body["job"].pop("nodes") == "2"
    check("v0.0.38", "job_submission", body)
    # job_properties (also the update body) requires 'environment'; updates work without it.
    check("v0.0.38", "job_properties", adapter.hold_body(False), partial=True)
    for path in ("jobs", "nodes", "partitions", "ping", "submit"):
        assert adapter.path(path) in spec("v0.0.38")["paths"]


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
