"""A submit handed to an sbatch started ahead of it (``transports.local``) with its options as
``#SBATCH`` lines (``backends.sbatch_directives``): the same job as with the options on the
command line, nothing submitted that was not asked for, and no process left behind."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from parallelworks_lab.backends.base import SubmitRequest
from parallelworks_lab.backends.sbatch_directives import script_with_directives
from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.transports import LocalTransport, LocalTransportSettings

from .support.dev_cluster import transport_entry
from .test_slurm import backend_for
from .test_ssh_channel import connected, odd_directory

OPTIONS = ["--job-name=fit", "--chdir=/home/a/run-1", "--output=/home/a/pwlab-%j-ab.out"]

# -- where the options may go into the script --------------------------------------------------


def test_plain_options_become_directives_after_the_first_line():
    script = "#!/bin/bash -l\n\necho hi\n"
    assert script_with_directives(script, OPTIONS, {"PATH": "/bin", "SLURM_CONF": "/x"}) == (
        "#!/bin/bash -l\n"
        "#SBATCH --job-name=fit\n"
        "#SBATCH --chdir=/home/a/run-1\n"
        "#SBATCH --output=/home/a/pwlab-%j-ab.out\n"
        "\necho hi\n"
    )
    assert script_with_directives("#!/bin/sh", ["--nodes=1"], []) == (
        "#!/bin/sh\n#SBATCH --nodes=1\n"
    )


@pytest.mark.parametrize(
    "script, options, environment",
    [
        # The script's own directives: on the command line ours override them; in the script
        # theirs would come first and the order would decide.
        ("#!/bin/sh\n#SBATCH --mem-per-cpu=1G\ntrue\n", OPTIONS, []),
        ("#!/bin/sh\n#PBS -l walltime=1:00\ntrue\n", OPTIONS, []),
        ("echo no interpreter line\n", OPTIONS, []),
        # Values that sbatch reads differently in a directive line.
        ("#!/bin/sh\n", ["--job-name=my fit"], []),
        ("#!/bin/sh\n", ["--job-name=fit#2"], []),
        ("#!/bin/sh\n", ['--job-name="fit"'], []),
        ("#!/bin/sh\n", ["--chdir=/home/a/o'neil"], []),
        ("#!/bin/sh\n", ["--job-name=HetJob-test"], []),
        ("#!/bin/sh\n", ["--job-name=packjob"], []),
        ("#!/bin/sh\n", ["--job-name=tab\there"], []),
        ("#!/bin/sh\n", ["--exclusive"], []),
        # Input variables override directives but not command-line options.
        ("#!/bin/sh\n", OPTIONS, ["SBATCH_ACCOUNT"]),
        ("#!/bin/sh\n", OPTIONS, {"SLURM_HINT": "nomultithread"}),
    ],
)
def test_options_stay_on_the_command_line_when_a_directive_could_differ(
    script, options, environment
):
    assert script_with_directives(script, options, environment) is None


# -- a command started ahead (no scheduler needed) ---------------------------------------------

# Prints when it started, then its input: "does nothing" before its input ends, as sbatch.
STARTED_THEN_CAT = ["sh", "-c", "date +%s.%N; cat"]


def children() -> set[int]:
    """The live child processes of this test process."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return {p for p in pids if _alive(p)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def started_at(transport: LocalTransport, **options: Any) -> tuple[float, str]:
    result = await transport.run(STARTED_THEN_CAT, input="script\n", start_ahead=True, **options)
    assert result.returncode == 0, result.stderr
    first, rest = result.stdout.split("\n", 1)
    return float(first), rest


async def test_the_same_command_again_was_started_before_it_was_asked_for(tmp_path):
    before = children()  # other tests' servers
    transport = LocalTransport(LocalTransportSettings(start_ahead_seconds=30))
    _, output = await started_at(transport, cwd=str(tmp_path))
    assert output == "script\n"
    await asyncio.sleep(0.3)
    asked = time.time()
    second, output = await started_at(transport, cwd=str(tmp_path))
    assert second < asked - 0.2 and output == "script\n"  # the input reached it whole
    # Not the same command: a different directory, environment or umask is started afresh.
    for change in ({"cwd": "/"}, {"env": {"A": "1"}}, {"umask": 0o077}):
        await asyncio.sleep(0.3)
        asked = time.time()
        fresh, _ = await started_at(transport, **change)
        assert fresh >= asked - 0.05, change
    await transport.close()
    assert not (children() - before)


async def test_a_spare_is_killed_after_its_wait_and_when_the_transport_closes():
    before = children()
    transport = LocalTransport(LocalTransportSettings(start_ahead_seconds=0.5))
    await started_at(transport)
    await asyncio.sleep(0.1)
    spare = children() - before
    assert len(spare) == 1
    await asyncio.sleep(1.0)
    assert not (children() - before)  # waited its 0.5 s: killed and reaped
    await started_at(transport)
    await asyncio.sleep(0.1)
    assert len(children() - before) == 1
    await transport.close()
    assert not (children() - before)


async def test_a_spare_that_died_is_not_used():
    before = children()
    transport = LocalTransport(LocalTransportSettings(start_ahead_seconds=30))
    await started_at(transport)
    await asyncio.sleep(0.1)
    (spare,) = children() - before
    os.kill(spare, 9)
    await asyncio.sleep(0.1)
    asked = time.time()
    started, output = await started_at(transport)
    assert started >= asked - 0.05 and output == "script\n"
    await transport.close()


async def test_a_spare_given_no_input_sees_its_input_end():
    transport = LocalTransport(LocalTransportSettings(start_ahead_seconds=30))
    for _ in range(2):  # the second is handed the one started ahead, whose stdin is a pipe
        result = await transport.run(["cat"], start_ahead=True, timeout=5)
        assert (result.returncode, result.stdout) == (0, "")
    await transport.close()


async def test_no_spare_without_start_ahead():
    before = children()
    transport = LocalTransport(LocalTransportSettings(start_ahead_seconds=0))
    assert not transport.starts_ahead
    await started_at(transport)
    await asyncio.sleep(0.1)
    assert not (children() - before)
    on = LocalTransport(LocalTransportSettings())
    await on.run(STARTED_THEN_CAT, input="x")  # a command not marked start_ahead
    await asyncio.sleep(0.1)
    assert not (children() - before)
    await on.close()


# -- on the Slurm test cluster -----------------------------------------------------------------

COMPARED = re.compile(
    r"^(JobName|Partition|NumNodes|NumTasks|CPUs/Task|TimeLimit|MinMemoryNode|WorkDir|StdOut|"
    r"StdErr|Account|QOS|TresPerJob|TresPerNode|Dependency|ArrayTaskId|ReqTRES)$"
)


def show_job(native_id: str, env: dict[str, str]) -> dict[str, str]:
    listing = subprocess.run(
        ["scontrol", "show", "job", "-o", native_id],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout.splitlines()[0]
    return dict(field.split("=", 1) for field in listing.split() if "=" in field)


def batch_script(native_id: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["scontrol", "write", "batch_script", native_id.split("_")[0], "-"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout


@pytest.mark.parametrize("cluster", ["slurm", "slurm-ssh"])
async def test_options_in_the_script_make_the_same_job_as_on_the_command_line(
    slurm_cluster, cluster, tmp_path
):
    """Every option we pass, both ways, on the real Slurm: scontrol shows the same job."""
    env = slurm_cluster["env"]
    never = transport_entry(cluster, slurm_cluster) | {"start_ahead_seconds": 0}
    cold = backend_for(slurm_cluster, cluster, tmp_path, transport=never)
    ahead = backend_for(slurm_cluster, cluster, tmp_path)
    assert ahead.transport.starts_ahead and not cold.transport.starts_ahead
    workdir = slurm_cluster["scratch_dir"]
    first = SubmitRequest(
        job_id=uuid.uuid4().hex[:12],
        submit_token="",
        name="same-job",
        script="#!/bin/bash\nsleep 30\n",
        resources=ResourceRequest(
            partition="gpu",
            nodes=1,
            ntasks=2,
            cpus_per_task=1,
            gpus=1,
            memory_mb=100,
            time_limit_minutes=5,
            array="0-1",
            account="physics",
            qos="high",
        ),
        working_dir=workdir,
    )
    dependent_request = replace(first, resources=ResourceRequest(partition="debug"))
    shown: dict[str, list[dict[str, str]]] = {}
    # Ahead twice: the first starts its sbatch itself, later ones are handed a waiting one.
    for way, backend in (("cold", cold), ("ahead", ahead), ("ahead again", ahead)):
        array_job = await backend.submit(replace(first, submit_token=uuid.uuid4().hex))
        dependent = await backend.submit(
            replace(
                dependent_request,
                submit_token=uuid.uuid4().hex,
                after_native_ids=[array_job.native_id],
            )
        )
        shown[way] = []
        for native_id in (f"{array_job.native_id}_0", dependent.native_id):
            job = show_job(native_id, env)
            assert job["Comment"].startswith("pwlab:")
            for key in ("Dependency", "StdOut", "StdErr"):  # without the job numbers
                job[key] = re.sub(r"\d+", "N", job.get(key, ""))
            shown[way].append({k: v for k, v in job.items() if COMPARED.match(k)})
            in_script = "#SBATCH --job-name=same-job" in batch_script(native_id, env)
            assert in_script == (way != "cold"), way
    assert shown["cold"][0]["Account"] == "physics" and shown["cold"][1]["Dependency"]
    assert shown["ahead"] == shown["cold"]
    assert shown["ahead again"] == shown["cold"]
    subprocess.run(["scancel", "--name=same-job"], env={**os.environ, **env}, check=False)
    await cold.close()
    await ahead.close()


KILLED_SERVER = textwrap.dedent(
    """
    import asyncio, json, os, sys, uuid
    from pathlib import Path
    from parallelworks_lab.backends.base import SubmitRequest
    from parallelworks_lab.models import ResourceRequest
    from tests.test_slurm import backend_for

    async def main():
        info = json.loads(sys.argv[1])
        backend = backend_for(info, sys.argv[4], Path(sys.argv[2]))
        request = SubmitRequest(
            job_id=uuid.uuid4().hex[:12], submit_token=uuid.uuid4().hex, name=sys.argv[3],
            script="#!/bin/sh\\ntrue\\n", resources=ResourceRequest(),
            working_dir=info["scratch_dir"],
        )
        await backend.submit(request)
        await asyncio.sleep(0.5)  # the next sbatch is started, waiting for a script
        spare = backend.transport.spares.spare
        assert spare is not None, "nothing was started ahead"
        print(spare.proc.pid if sys.argv[4] == "slurm" else 0, flush=True)
        os._exit(0)

    asyncio.run(main())
    """
)


def sbatch_processes(user: str) -> list[str]:
    return subprocess.run(
        ["pgrep", "-u", user, "-x", "sbatch"], capture_output=True, text=True, check=False
    ).stdout.split()


@pytest.mark.parametrize("cluster", ["slurm", "slurm-ssh"])
async def test_a_server_killed_while_an_sbatch_waits_submits_nothing_more(
    slurm_cluster, cluster, tmp_path
):
    import json

    name = f"killed-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **slurm_cluster["env"]}
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_SERVER,
            json.dumps(slurm_cluster),
            str(tmp_path),
            name,
            cluster,
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    spare = int(child.stdout.split()[-1])
    deadline = time.monotonic() + 10
    if cluster == "slurm":
        while _alive(spare) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not _alive(spare), "the waiting sbatch outlived the server"
    else:  # on the login node: the SSH user's
        user = slurm_cluster["ssh"]["username"]
        while sbatch_processes(user) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not sbatch_processes(user), "the waiting sbatch outlived the connection"
    await asyncio.sleep(1)
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", f"--name={name}", "-o", "%i"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert len(listed) == 1, listed  # the one submitted; the spare's empty script was refused


# -- over SSH (the test cluster's sshd) --------------------------------------------------------


async def test_over_ssh_the_same_command_again_was_started_before_it_was_asked_for(
    slurm_cluster,
):
    directory = odd_directory(Path(slurm_cluster["scratch_dir"]))
    directory.chmod(0o777)
    # Quotes, expansions, backslashes, blank lines and no final newline: byte for byte.
    script = "#!/bin/sh\n'it''s' $HOME `id` \\\\ \"q\" %s %%\n\n\nlast line, no newline"
    async with connected(slurm_cluster, start_ahead_seconds=30) as transport:
        assert transport.starts_ahead
        run = {"input": script, "cwd": str(directory), "umask": 0o077, "start_ahead": True}
        first = await transport.run(STARTED_THEN_CAT, timeout=10, **run)
        assert first.returncode == 0 and first.stdout.split("\n", 1)[1] == script
        await asyncio.sleep(0.5)
        asked = time.time()
        second = await transport.run(STARTED_THEN_CAT, timeout=10, **run)
        started, output = second.stdout.split("\n", 1)
        assert float(started) < asked - 0.3 and output == script, second
        # In its directory, with its umask, as it would be run when asked.
        where = await transport.run(["sh", "-c", "pwd; umask; cat >/dev/null"], timeout=10, **run)
        await asyncio.sleep(0.3)
        where = await transport.run(["sh", "-c", "pwd; umask; cat >/dev/null"], timeout=10, **run)
        assert where.stdout == f"{directory}\n0077\n", where


async def test_over_ssh_a_directory_gone_before_the_input_came_gets_none(slurm_cluster):
    scratch = Path(slurm_cluster["scratch_dir"])
    directory = odd_directory(scratch)
    directory.chmod(0o777)
    received = scratch / f"received-{uuid.uuid4().hex}"
    received.touch(mode=0o666)
    received.chmod(0o666)
    appender = ["sh", "-c", f"cat >> '{received}'"]
    run = {"cwd": str(directory), "start_ahead": True, "timeout": 10}
    async with connected(slurm_cluster, start_ahead_seconds=30) as transport:
        assert (await transport.run(appender, input="one\n", **run)).returncode == 0
        await asyncio.sleep(0.5)  # the next one waits in the directory
        directory.rmdir()
        with pytest.raises(NotADirectoryError):
            await transport.run(appender, input="two\n", **run)
        assert received.read_text() == "one\n"
        # The connection and its command channels are still in order.
        assert (await transport.run(["true"], timeout=10)).returncode == 0
