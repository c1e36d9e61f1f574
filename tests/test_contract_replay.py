"""The backend contract (test_contract.py), replayed: the same tests, through the real server,
over Slurm (local exec and SSH), slurmrestd and Grid Engine (local exec and SSH) as recorded
from the real test clusters (tests/data/recordings/, `make record`). No cluster, no root, no
waiting: a scheduler command or HTTP request that is not in the recording fails the test with
the command and the nearest recorded one (see tests/support/cassette.py).
"""

from __future__ import annotations

import asyncio
import types
import uuid
from typing import Any

import pytest

from . import test_contract as contract
from .support import api as support_api
from .support import cassette, waiting
from .support.api import server_config
from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry

# The contract's tests themselves, unchanged; the fixtures below replace the live cluster.
globals().update({n: f for n, f in vars(contract).items() if n.startswith("test_")})

REPLAYED = ["slurm", "slurm-ssh", "slurmrest", "sge", "sge-ssh"]
POLL_INTERVAL = 0.01  # answers advance as fast as they are asked for
LONGEST_SLEEP = 0.01  # the tests' own sleeps wait for nothing here


@pytest.fixture(params=REPLAYED)
def cluster(request) -> str:
    return str(request.param)


@pytest.fixture
def slurm_info(cluster) -> dict[str, Any]:
    """The description of the cluster the recording was made on."""
    return cassette.load_cluster(cluster)


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / f"t-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


@pytest.fixture
def jp_server_config(tmp_path, cluster, slurm_info):
    build = sge_cluster_entry if cluster.startswith("sge") else slurm_cluster_entry
    entry = build(cluster, slurm_info)
    entry["poll_interval"] = POLL_INTERVAL
    return server_config(tmp_path, [contract.LOCAL, entry], poll_interval=POLL_INTERVAL)


def _short_sleeps() -> types.SimpleNamespace:
    real = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        return await real(min(delay, LONGEST_SLEEP), result)

    names = {n: getattr(asyncio, n) for n in dir(asyncio) if not n.startswith("_")}
    return types.SimpleNamespace(**{**names, "sleep": sleep})


@pytest.fixture
def recording_name(request) -> str:
    """Which recording a test replays: its own, or the one named by @pytest.mark.recording."""
    marker = request.node.get_closest_marker("recording")
    return str(marker.args[0]) if marker else request.node.originalname


@pytest.fixture(autouse=True)
def recording(request, cluster, recording_name, workdir, tmp_path, monkeypatch):
    """Replaces test_contract.recording: replay instead of the scheduler."""
    with cassette.replaying(monkeypatch, cluster, recording_name, workdir, tmp_path) as session:
        fast = _short_sleeps()
        monkeypatch.setattr(contract, "asyncio", fast)
        monkeypatch.setattr(support_api, "asyncio", fast)
        monkeypatch.setattr(waiting, "asyncio", fast)
        real_call = support_api.Api.call

        async def call(self, *args: Any, **kwargs: Any) -> Any:
            # A miss in the poller (which only logs errors) or behind a 500 fails the test at
            # once, with the miss as the message.
            if session.misses:
                raise cassette.ReplayMiss(session.misses[0])
            answer = await real_call(self, *args, **kwargs)
            if session.misses:
                raise cassette.ReplayMiss(session.misses[0])
            return answer

        monkeypatch.setattr(support_api.Api, "call", call)
        yield session
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.passed:
        assert not session.misses, session.misses[0]
        left = session.unreplayed_changes()
        assert not left, f"recorded changes the replay never made: {left}"


# -- a changed command line fails the replay ----------------------------------------------------

HELLO = "#!/bin/bash\necho hello from the job\necho err >&2\n"


def expect_miss(session: cassette.Replayer, *fragments: str) -> str:
    assert session.misses, "the replay served a request that was not recorded"
    message = session.misses[0]
    for fragment in fragments:
        assert fragment in message, message
    session.forget()  # the miss was the point of the test
    return message


@pytest.mark.recording("test_submit_completes_with_output")
@pytest.mark.parametrize("cluster", ["slurm", "slurm-ssh"])
async def test_a_new_sbatch_option_fails_the_replay(api, cluster, workdir, recording, monkeypatch):
    from parallelworks_lab.backends.slurm import SlurmBackend

    real = SlurmBackend.sbatch_argv
    monkeypatch.setattr(
        SlurmBackend, "sbatch_argv", lambda self, *a: [*real(self, *a), "--exclusive=user"]
    )
    with pytest.raises(cassette.ReplayMiss):
        await api.submit(**contract.body(cluster, workdir, name="hello", script=HELLO))
    # On the command line (SSH), or as an #SBATCH line (local: the sbatch started ahead).
    expect_miss(
        recording, "--exclusive=user", "nearest recorded: sbatch --parsable", "--job-name=hello"
    )


@pytest.mark.recording("test_exit_3_is_failed_with_code_3")
@pytest.mark.parametrize("cluster", ["slurm"])
async def test_a_changed_squeue_format_fails_the_replay(
    api, cluster, workdir, recording, monkeypatch
):
    """Not only submits: a poll the recording does not have fails the test at its next request
    (the poller itself only logs errors)."""
    from parallelworks_lab.backends import slurm_cli

    monkeypatch.setattr(slurm_cli, "SQUEUE_FIELDS", [*slurm_cli.SQUEUE_FIELDS, "Priority"])
    job = await api.submit(**contract.body(cluster, workdir, command="exit 3"))
    with pytest.raises(cassette.ReplayMiss):
        await api.wait(job["id"], contract.TERMINAL, timeout=30)
    expect_miss(recording, "never recorded", "Priority", "nearest recorded: squeue --me")


@pytest.mark.recording("test_submit_completes_with_output")
@pytest.mark.parametrize("cluster", ["sge", "sge-ssh"])
async def test_a_new_qsub_option_fails_the_replay(api, cluster, workdir, recording, monkeypatch):
    from parallelworks_lab.backends.sge import SGEBackend

    real = SGEBackend.qsub_argv
    monkeypatch.setattr(SGEBackend, "qsub_argv", lambda self, *a: [*real(self, *a), "-notify"])
    with pytest.raises(cassette.ReplayMiss):
        await api.submit(**contract.body(cluster, workdir, name="hello", script=HELLO))
    # The output folder is made in the same command as qsub (see SGEBackend.submit).
    expect_miss(recording, "-notify", "nearest recorded: sh -c 'mkdir -p", "qsub -terse")


@pytest.mark.recording("test_submit_completes_with_output")
@pytest.mark.parametrize("cluster", ["slurmrest"])
async def test_a_changed_rest_submit_body_fails_the_replay(
    api, cluster, workdir, recording, monkeypatch
):
    from parallelworks_lab.backends.slurmrest import SlurmRestBackend

    real = SlurmRestBackend.job_description

    def described(self, *args):
        job = real(self, *args)
        job.name = job.name + "-renamed"
        return job

    monkeypatch.setattr(SlurmRestBackend, "job_description", described)
    with pytest.raises(cassette.ReplayMiss):
        await api.submit(**contract.body(cluster, workdir, name="hello", script=HELLO))
    expect_miss(recording, "hello-renamed", "nearest recorded: POST /slurm/")
