"""Slurm-specific behaviour against the real test cluster: history, outages, SSH trust, parsing."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from parallelworks_lab.backends.base import BackendContext, SubmitRequest
from parallelworks_lab.backends.slurm import SlurmBackend
from parallelworks_lab.backends.slurm_common import expand_pattern
from parallelworks_lab.backends.slurm_partitions import (
    parse_gpus,
    parse_minutes,
    parse_partition_access,
)
from parallelworks_lab.backends.slurm_states import (
    SLURM_STATES,
    exit_code_from_sacct,
    exit_code_from_status,
    normalize,
)
from parallelworks_lab.errors import ClusterUnreachable
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.transports import ssh_shell
from parallelworks_lab.transports.ssh import quote_command

from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry, start_slurm


def backend_for(
    info: dict[str, Any], cluster_id: str, tmp_path: Path, **settings: Any
) -> SlurmBackend:
    entry = slurm_cluster_entry(cluster_id, info)
    options = {k: v for k, v in entry.items() if k not in ("id", "kind", "poll_interval")}
    options.update(settings)
    context = BackendContext(cluster_id=cluster_id, state_dir=tmp_path, root_dir=tmp_path)
    backend = SlurmBackend.from_config(options, context)
    assert isinstance(backend, SlurmBackend)
    return backend


async def test_job_that_left_squeue_keeps_its_true_end(slurm_cluster, tmp_path):
    """A job that ended and was purged from squeue before we looked is found in the history:
    slurmdbd's (``sacct``, what ``auto`` uses when accounting is on), and the job completion
    file's (``sacct -c``) tells the same end."""
    assert slurm_cluster["accounting"]["storage"] == "slurmdbd"
    backend = backend_for(slurm_cluster, "slurm", tmp_path)
    workdir = Path(slurm_cluster["scratch_dir"])
    results = []
    for code in (0, 3):
        request = SubmitRequest(
            job_id=uuid.uuid4().hex[:12],
            submit_token=uuid.uuid4().hex,
            name=f"gone{code}",
            script=f"#!/bin/bash\nexit {code}\n",
            resources=ResourceRequest(),
            working_dir=str(workdir),
        )
        results.append(await backend.submit(request))
    ids = [r.native_id for r in results]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        listed = {row["JobArrayID"] for row in await backend._squeue()}
        if not listed & set(ids):
            break
        await asyncio.sleep(1)
    else:
        pytest.fail("jobs never left squeue")
    statuses = await backend.poll(ids)
    assert backend._history_mode == "auto"  # sacct answered: no fallback to the job completion file
    assert (statuses[ids[0]].state, statuses[ids[0]].exit_code) == (JobState.COMPLETED, 0)
    assert (statuses[ids[1]].state, statuses[ids[1]].exit_code) == (JobState.FAILED, 3)
    assert statuses[ids[1]].ended_at is not None
    await backend.close()
    jobcomp = backend_for(slurm_cluster, "slurm", tmp_path, history="sacct-c")
    from_file = await jobcomp.poll(ids)
    for native in ids:
        theirs, ours = from_file[native], statuses[native]
        assert (theirs.state, theirs.exit_code, theirs.ended_at) == (
            ours.state,
            ours.exit_code,
            ours.ended_at,
        )
    await jobcomp.close()


def _ctld_pid(info: dict[str, Any]) -> int:
    pid_file = Path(info["pids_dir"]) / "slurmctld.pid"
    return int(pid_file.read_text().split()[0])


async def test_controller_outage_marks_cluster_unreachable_and_loses_nothing(
    slurm_cluster, tmp_path, job_service
):
    service = await job_service(
        [slurm_cluster_entry("slurm", slurm_cluster) | {"command_timeout": 20}],
        root_dir=Path(slurm_cluster["scratch_dir"]),
        poll_interval=0.5,
    )
    events: list[dict[str, Any]] = []
    service.subscribe(lambda kind, payload: events.append(payload) if kind == "job" else None)
    job = await service.submit(JobSubmit(cluster="slurm", command="sleep 6; exit 4"))
    for _ in range(100):
        if service.get_job(job.id).state is JobState.RUNNING:
            break
        await asyncio.sleep(0.1)
    assert service.get_job(job.id).state is JobState.RUNNING
    os.kill(_ctld_pid(slurm_cluster), signal.SIGTERM)
    try:
        deadline = time.monotonic() + 60
        while service.list_clusters()[0].status != "unreachable":
            assert time.monotonic() < deadline, "cluster never reported unreachable"
            await asyncio.sleep(0.5)
        summary = service.list_clusters()[0]
        assert "slurm controller" in (summary.status_message or "").lower(), summary
        await asyncio.sleep(8)  # the job ends while nobody can ask
        assert service.get_job(job.id).state is JobState.RUNNING
    finally:
        start_slurm()  # brings back only the stopped controller
    service.pollers["slurm"].wake()
    deadline = time.monotonic() + 90
    while not service.get_job(job.id).terminal:
        assert time.monotonic() < deadline, service.get_job(job.id)
        await asyncio.sleep(0.5)
    final = service.get_job(job.id)
    assert (final.state, final.exit_code) == (JobState.FAILED, 4)
    assert service.list_clusters()[0].status == "ok"
    assert all(e["state"] != "FAILED" or e["exit_code"] == 4 for e in events)


async def test_submit_cut_off_by_a_dropped_connection_is_found_not_sent_twice(
    slurm_cluster, tmp_path, monkeypatch, job_service
):
    """sbatch runs, then the SSH connection drops before its answer is read: the user gets a
    503, the job is not submitted a second time, and the poller finds it by its token."""
    scratch = Path(slurm_cluster["scratch_dir"])
    service = await job_service(
        [slurm_cluster_entry("slurm-ssh", slurm_cluster)], root_dir=scratch, poll_interval=0.3
    )
    backend = service.clusters["slurm-ssh"].backend
    read_through, run_on_shell = ssh_shell.read_through, ssh_shell.ShellChannel.run
    submitting: contextvars.ContextVar[bool] = contextvars.ContextVar("submitting", default=False)

    drops = [1]  # the first sbatch only

    async def run_marked(self: Any, argv: list[str], **options: Any) -> Any:
        token = submitting.set(argv[0] == "sbatch")  # seen by the reads this run starts
        try:
            return await run_on_shell(self, argv, **options)
        finally:
            submitting.reset(token)

    async def read_after_a_drop(reader: Any, marker: bytes) -> tuple[bytes, bytes]:
        if submitting.get() and drops[0]:
            drops[0] = 0
            # sbatch runs and answers, but the network goes before the answer reaches us.
            await asyncio.sleep(1.0)
            backend.transport._conn.abort()  # type: ignore[attr-defined]
            raise asyncssh.ConnectionLost("network down")
        return await read_through(reader, marker)

    monkeypatch.setattr(ssh_shell.ShellChannel, "run", run_marked)
    monkeypatch.setattr(ssh_shell, "read_through", read_after_a_drop)
    name = f"cut-{uuid.uuid4().hex[:6]}"
    request = JobSubmit(cluster="slurm-ssh", name=name, command="sleep 5", working_dir=str(scratch))
    with pytest.raises(ClusterUnreachable, match="lost"):
        await service.submit(request)
    [job] = service.list_jobs(cluster="slurm-ssh").jobs
    assert job.state is JobState.SUBMITTING and job.native_id is None
    queued = subprocess.run(
        ["squeue", "-h", "-u", slurm_cluster["ssh"]["username"], "-n", name, "-o", "%i"],
        env={**os.environ, **slurm_cluster["env"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(queued) == 1, queued  # queued once, not twice
    deadline = time.monotonic() + 30
    while service.get_job(job.id).native_id is None:
        assert time.monotonic() < deadline, service.get_job(job.id)
        await asyncio.sleep(0.2)
    assert service.get_job(job.id).native_id == queued[0]
    while not service.get_job(job.id).terminal:
        assert time.monotonic() < deadline + 30, service.get_job(job.id)
        await asyncio.sleep(0.3)
    assert service.get_job(job.id).state is JobState.COMPLETED


async def test_ssh_host_key_is_checked(slurm_cluster, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    info = {**slurm_cluster, "ssh": {**slurm_cluster["ssh"], "known_hosts": str(empty)}}
    backend = backend_for(info, "slurm-ssh", tmp_path)
    with pytest.raises(ClusterUnreachable) as err:
        await backend.discover()
    assert "host key" in err.value.message and "known_hosts" in err.value.message
    await backend.close()


async def test_ssh_connection_is_reused(slurm_cluster, tmp_path):
    backend = backend_for(slurm_cluster, "slurm-ssh", tmp_path)
    for _ in range(5):
        await backend.discover()
        await backend.poll([])
    # discover: sinfo, scontrol (partition access), sacctmgr (the user's accounts); poll: squeue
    assert backend.transport.commands_run == 20
    assert backend.transport.connects == 1  # type: ignore[attr-defined]
    assert backend.transport.channels_opened == 1  # type: ignore[attr-defined]  # one shell
    await backend.close()


def test_every_slurm_state_maps_to_one_normalized_state():
    for name, (code, state) in SLURM_STATES.items():
        assert normalize(name) is state
        assert normalize(code) is state
        assert state is not JobState.UNKNOWN
    assert normalize("CANCELLED by 0") is JobState.CANCELLED
    assert normalize("PENDING", "JobHeldUser") is JobState.HELD
    assert normalize("PENDING", "Resources") is JobState.QUEUED
    assert normalize("NOT_A_STATE") is JobState.UNKNOWN


def test_parsers():
    assert exit_code_from_status(768) == 3
    assert exit_code_from_status(9) == 137
    assert exit_code_from_sacct("3:0") == 3
    assert exit_code_from_sacct("0:15") == 143
    assert parse_minutes("30:00") == 30
    assert parse_minutes("1:00:00") == 60
    assert parse_minutes("2-00:00:00") == 2880
    assert parse_minutes("1-12") == 2160
    assert parse_minutes("infinite") is None
    assert parse_gpus("gpu:tesla:2(S:0),shard:4") == (2, ["tesla"])
    assert parse_gpus("(null)") == (0, [])
    assert expand_pattern("/d/100%%/pwlab-%A_%a-x.out", "9", "7", "2") == "/d/100%/pwlab-7_2-x.out"
    assert quote_command(["squeue", "-o", "a b;$(x)"], {"K": "v w"}) == (
        "env 'K=v w' squeue -o 'a b;$(x)'"
    )


def test_account_and_qos_are_one_sbatch_option_each(tmp_path):
    """What sbatch gets: one --account and one --qos option, and none when not asked for (the
    job runs under the user's default account and QOS). That Slurm checks and applies them is
    test_contract's test_account_reaches_the_scheduler_and_is_checked, on the cluster."""
    context = BackendContext(cluster_id="s", state_dir=tmp_path, root_dir=tmp_path)
    backend = SlurmBackend.from_config({}, context)
    assert isinstance(backend, SlurmBackend)
    request = SubmitRequest(
        job_id="0123456789ab",
        submit_token="t",
        name="n",
        script="#!/bin/bash\n",
        resources=ResourceRequest(account="physics", qos="high"),
        working_dir=None,
    )
    argv = backend.sbatch_argv(request, "/w")
    assert "--account=physics" in argv and "--qos=high" in argv
    plain = backend.sbatch_argv(replace(request, resources=ResourceRequest()), "/w")
    assert not [a for a in plain if a.startswith(("--account", "--qos"))]
    listing = "PartitionName=p AllowAccounts=ALL AllowQos=a,b DenyAccounts=x"
    assert parse_partition_access(listing) == {
        "p": {"accounts": [], "deny_accounts": ["x"], "qos": ["a", "b"], "deny_qos": []}
    }


# -- injection corpus --------------------------------------------------------------------------


def payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"$(touch {c})",
        f"`touch {c}`",
        f"x; touch {c}",
        f"x' ; touch {c}; echo '",
        f'x"; touch {c}; echo "',
        f"x && touch {c}",
        f"x | touch {c}",
        f"x\ntouch {c}",
        f"--wrap=touch {c}",
    ]


@pytest.mark.parametrize("cluster_id", ["local", "slurm", "slurm-ssh", "sge", "sge-ssh"])
async def test_injection_corpus_is_rejected_or_literal(cluster_id, request, tmp_path, job_service):
    entry: dict[str, Any]
    if cluster_id == "local":
        info, entry = None, {"id": "local", "kind": "local", "slots": 2}
    elif cluster_id.startswith("sge"):
        info = request.getfixturevalue("sge_cluster")
        entry = sge_cluster_entry(cluster_id, info)
    else:
        info = request.getfixturevalue("slurm_cluster")
        entry = slurm_cluster_entry(cluster_id, info)
    base = Path(info["scratch_dir"]) if info else tmp_path
    canary = base / f"canary-{uuid.uuid4().hex[:8]}"
    service = await job_service([entry], root_dir=base, poll_interval=0.3)
    literal: list[tuple[str, str, str]] = []  # (job id, what it printed, what we expect)
    rejected = 0
    for payload in payloads(canary):
        bodies: list[tuple[dict[str, Any], str | None]] = []
        workdir = base / f"w-{uuid.uuid4().hex[:6]}" / payload.replace("\n", "_")
        workdir.mkdir(parents=True)
        os.chmod(workdir, 0o777)
        for parent in workdir.relative_to(base).parents:
            os.chmod(base / parent, 0o777)
        bodies.append(({"name": payload, "command": 'printf %s "$PWLAB_N"'}, payload))
        bodies.append(({"working_dir": str(workdir), "command": "pwd"}, f"{workdir}\n"))
        bodies.append(({"env": {"PAYLOAD": payload}, "command": 'printf %s "$PAYLOAD"'}, payload))
        bodies.append(({"env": {payload: "x"}, "command": "true"}, None))
        bodies.append(({"resources": {"array": payload}, "command": "true"}, None))
        for field in ("partition", "account", "qos"):
            bodies.append(({"resources": {field: payload}, "command": "true"}, None))
        for fields, expected in bodies:
            if "name" in fields:
                # The name reaches the job as its scheduler name; read it back literally.
                var = {"local": "PWLAB_JOB_NAME", "sge": "JOB_NAME", "sge-ssh": "JOB_NAME"}.get(
                    cluster_id, "SLURM_JOB_NAME"
                )
                fields["command"] = f'printf %s "${var}"'
            try:
                job = await service.submit(JobSubmit(cluster=cluster_id, **fields))
            except Exception as exc:  # validation error or 400 from the service
                assert getattr(exc, "status", 400) == 400 or "validation" in str(exc).lower()
                rejected += 1
                continue
            assert expected is not None, f"{fields} should have been refused"
            literal.append((job.id, "", expected))
    for job_id, _, expected in literal:
        deadline = time.monotonic() + 60
        while not service.get_job(job_id).terminal:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        job = service.get_job(job_id)
        assert job.state is JobState.COMPLETED, job
        out = ""
        while True:
            chunk = await service.read_log(job_id, "stdout", len(out.encode()))
            out += chunk.data
            if chunk.eof:
                break
            await asyncio.sleep(0.2)
        assert out == expected
    assert not canary.exists(), "a payload was executed"
    # env names, arrays, partitions, accounts, QOS at least
    assert rejected >= 5 * len(payloads(canary))
    assert len(literal) >= 2 * len(payloads(canary))


async def test_ssh_through_a_jump_host(slurm_cluster, tmp_path):
    """The login node reached through a jump host (here the same sshd, forwarding to itself)."""
    ssh = slurm_cluster["ssh"]
    entry = slurm_cluster_entry("slurm-ssh", slurm_cluster)
    entry["transport"]["jump_host"] = {
        "host": ssh["host"],
        "port": ssh["port"],
        "username": ssh["username"],
        "key_file": ssh["key_file"],
    }
    # The jump host's key is checked against the same known_hosts file.
    options = {k: v for k, v in entry.items() if k not in ("id", "kind", "poll_interval")}
    context = BackendContext(cluster_id="jump", state_dir=tmp_path, root_dir=tmp_path)
    backend = SlurmBackend.from_config(options, context)
    partitions = await backend.discover()
    assert {p.name for p in partitions} == {"debug", "gpu", "multi", "proj"}
    await backend.close()


async def test_ssh_reconnects_after_the_connection_drops(slurm_cluster, tmp_path):
    backend = backend_for(slurm_cluster, "slurm-ssh", tmp_path)
    transport = backend.transport
    await backend.discover()
    conn = transport._conn  # type: ignore[attr-defined]
    conn.abort()  # the network drops it under us
    await conn.wait_closed()
    partitions = await backend.discover()
    assert {p.name for p in partitions} == {"debug", "gpu", "multi", "proj"}
    assert transport.connects == 2  # type: ignore[attr-defined]
    await backend.close()
