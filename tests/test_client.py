"""The kernel-side client: server discovery (from a real kernel of a real server), the REST
calls, the in-process fallback, and secrets kept out of what it shows."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
import time

import pytest

from parallelworks_lab.client import (
    Client,
    ServerNotFound,
    discovery,
    find_server,
    parse_memory,
    parse_time,
    python_script,
)
from parallelworks_lab.client import api as client_api
from parallelworks_lab.errors import InvalidRequest, NotFound

from .support.pw_live import Kernel
from .support.server_process import TOKEN
from .support.waiting import wait_until

DISCOVERY_ENV = ("PWLAB_SERVER_URL", "PWLAB_TOKEN", "JPY_PARENT_PID")


@pytest.fixture(scope="module")
def kernel(pw_server):
    kernel = Kernel(pw_server)
    yield kernel
    kernel.shutdown()


def test_real_kernel_finds_its_server_and_submits(pw_server, kernel):
    code = textwrap.dedent(
        """
        import os
        import parallelworks_lab
        # Nothing tells the kernel where its server is: it must find it by itself.
        explicit = ("PWLAB_SERVER_URL", "PWLAB_TOKEN")
        assert not any(k in explicit or k.startswith("JUPYTERHUB_") for k in os.environ)
        client = parallelworks_lab.Client()
        print("SOURCE", client.source)
        print("REPR", repr(client))
        job = client.submit(command="echo from-the-kernel", name="kernel-job")
        job.wait(timeout=30)
        print("RESULT", job.id, job.state.value, job.logs().strip())
        """
    )
    result = kernel.execute(code)
    assert result["error"] is None, result
    out = result["stdout"]
    assert f"server pid {pw_server.proc.pid} (JPY_PARENT_PID)" in out
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    _, job_id, state, output = line.split(" ", 3)
    assert (state, output) == ("COMPLETED", "from-the-kernel")
    # The same job is what the REST API (and so the sidebar) shows.
    job = pw_server.get(f"jobs/{job_id}").json()
    assert (job["name"], job["state"]) == ("kernel-job", "COMPLETED")
    assert job_id in [j["id"] for j in pw_server.get("jobs").json()["jobs"]]
    assert TOKEN not in out


def test_follow_in_kernel_is_interruptible_and_the_job_keeps_running(pw_server, kernel, tmp_path):
    gate = tmp_path / "gate"
    # The job waits for the gate (at most 60 s, so a failed test leaves nothing behind).
    cell = (
        "%%pw submit --follow --name follower\n"
        f"echo started; for i in $(seq 600); do [ -e {gate} ] && break; sleep 0.1; done\n"
        "echo finished\n"
    )
    # `%load_ext` and `%%pw` must be in different cells.
    assert kernel.execute("%load_ext parallelworks_lab")["error"] is None
    try:
        msg_id = kernel.client.execute(cell)
        partial = kernel.collect(msg_id, timeout=30, until="started")
        assert "Submitted job" in partial["stdout"]
        job_id = partial["stdout"].split("Submitted job ", 1)[1].split()[0]
        kernel.interrupt()
        rest = kernel.collect(msg_id, timeout=30)
        assert rest["error"] is None, rest
        assert f"Stopped following: job {job_id} is " in rest["stderr"]
        assert "keeps running" in rest["stderr"]
        assert "Traceback" not in rest["stderr"]
        # Following stopped, the job did not: it runs on and finishes when we let it.
        time.sleep(0.5)
        assert pw_server.wait(job_id, {"RUNNING"}, timeout=5)["state"] == "RUNNING"
    finally:
        gate.touch()
    done = pw_server.wait(job_id, {"COMPLETED", "FAILED", "CANCELLED"})
    assert done["state"] == "COMPLETED"
    assert pw_server.get(f"jobs/{job_id}/logs").json()["data"] == "started\nfinished\n"
    # The kernel is still usable and `_` is the job.
    result = kernel.execute("print(_.id)")
    assert result["stdout"].strip() == job_id


def test_client_calls_and_errors(pw_client):
    assert [c.id for c in pw_client.clusters()] == ["local"]
    assert pw_client.clusters()[0].python
    detail = pw_client.cluster("local")
    assert detail.partitions[0].cpus_per_node == 2
    job = pw_client.submit("echo out; echo err >&2; exit 3", name="errs", mem="100M", time="0:30")
    assert job.resources.memory_mb == 100 and job.resources.time_limit_minutes == 1
    job.wait(timeout=30)
    assert (job.state.value, job.exit_code, job.reason) == ("FAILED", 3, "NonZeroExitCode")
    assert (job.logs(), job.logs("stderr")) == ("out\n", "err\n")
    assert job.working_dir == os.getcwd()
    assert job.id in [j.id for j in pw_client.jobs(state="finished")]
    assert job.id not in [j.id for j in pw_client.jobs(state="active")]
    assert pw_client.job(job.id).state == job.state
    assert "errs" in repr(pw_client.jobs(limit=5))
    with pytest.raises(InvalidRequest) as refused:
        pw_client.submit(command="true", cpus_per_task=3)
    assert "resources.cpus_per_task" in [e.field for e in refused.value.errors]
    with pytest.raises(InvalidRequest, match=r"resources\.memory_mb"):
        pw_client.submit(command="true", mem="lots")
    with pytest.raises(TypeError, match="unknown resource 'cpus'"):
        pw_client.submit(command="true", cpus=2)
    with pytest.raises(NotFound):
        pw_client.job("0" * 12)
    with pytest.raises(NotFound):
        pw_client.job("../../api")  # quoted into one path segment, never a traversal


def test_python_cells_are_never_interpreted_by_the_shell(pw_client, tmp_path):
    marker = tmp_path / "pwned"
    code = (
        f"print('$(touch {marker})', \"`touch {marker}`\", '\\'', 'PWLAB_EOF_0')\n"
        "import sys; print(sys.argv[1:] == [])\n"
    )
    job = pw_client.submit_python(code).wait(timeout=30)
    assert job.state.value == "COMPLETED", job.logs("stderr")
    assert job.logs() == f"$(touch {marker}) `touch {marker}` ' PWLAB_EOF_0\nTrue\n"
    assert not marker.exists()
    # The interpreter setting is quoted word by word.
    script = python_script("/opt/my python/bin/python3 -u", "print(1)")
    assert "'/opt/my' 'python/bin/python3' -u" not in script
    assert script.rstrip().endswith('python3 -u "$pwlab_tmp/cell.py"')


def test_secrets_never_show(pw_server, pw_client):
    job = pw_client.submit(command="true")
    shown = [repr(pw_client), pw_client.source, repr(job), job._repr_html_()]
    shown.append(repr(find_server({"PWLAB_SERVER_URL": "http://h:1/", "PWLAB_TOKEN": TOKEN})))
    assert not any(TOKEN in text for text in shown)
    assert "/parallelworks-lab/jobs/" in job._repr_html_()


def test_discovery_order(monkeypatch):
    monkeypatch.setattr(discovery, "_ancestor_pids", lambda: [])
    explicit = find_server(
        {
            "PWLAB_SERVER_URL": "http://example:9/base",
            "PWLAB_TOKEN": "t1",
            "JUPYTERHUB_SERVICE_URL": "http://hub:8/user/a/",
            "JUPYTERHUB_API_TOKEN": "t2",
        }
    )
    assert explicit is not None
    assert (explicit.url, explicit.token, explicit.base_path) == (
        "http://example:9/base/",
        "t1",
        "/base/",
    )
    hub = find_server(
        {"JUPYTERHUB_SERVICE_URL": "http://hub:8/user/a/", "JUPYTERHUB_API_TOKEN": "t2"}
    )
    assert hub is not None
    assert (hub.url, hub.token, hub.source) == (
        "http://hub:8/user/a/",
        "t2",
        "JupyterHub environment",
    )
    # JupyterHub's bind URL may name a listen-on-all address: connect to this machine instead.
    bound = find_server(
        {"JUPYTERHUB_SERVICE_URL": "http://*:8/user/a/", "JUPYTERHUB_API_TOKEN": "t"}
    )
    assert bound is not None and bound.url == "http://127.0.0.1:8/user/a/"
    # Nothing that says "Jupyter": no server, and that is not an error (in-process fallback).
    assert find_server({}) is None


def test_discovery_failure_says_what_it_tried(monkeypatch, tmp_path):
    monkeypatch.setattr(discovery, "_ancestor_pids", lambda: [])
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(ServerNotFound) as error:
        find_server({"JPY_PARENT_PID": "4242"})
    message = str(error.value)
    for expected in ("$PWLAB_SERVER_URL is not set", "JPY_PARENT_PID=4242", str(tmp_path)):
        assert expected in message
    with pytest.raises(ServerNotFound, match="JUPYTERHUB_SERVICE_URL"):
        find_server({"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_SERVICE_PREFIX": "/user/a/"})


def test_in_process_fallback_uses_the_default_database_and_server_config(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("JUPYTERHUB_", "PWLAB_")) or name == "JPY_PARENT_PID":
            monkeypatch.delenv(name)
    monkeypatch.setattr(discovery, "_ancestor_pids", lambda: [])
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ParallelWorksLabApp": {
                    "poll_interval": 0.2,
                    "clusters": [{"id": "mine", "kind": "local", "slots": 1}],
                }
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    client = Client()
    try:
        assert client.in_process_mode
        assert str(data_dir / "parallelworks_lab" / "jobs.sqlite") in client.source
        assert [c.id for c in client.clusters()] == ["mine"]
        job = client.submit(command="echo in-process", name="solo").wait(timeout=30)
        assert (job.state.value, job.logs()) == ("COMPLETED", "in-process\n")
        # A second client in the process shares the one service (and its one poller).
        other = Client()
        assert other._connection.service is client._connection.service
        assert other.job(job.id).state == job.state
        # The feed works in-process too (service listener instead of a WebSocket).
        events: list[dict] = []
        sub = client.feed.subscribe(on_job=events.append)
        second = client.submit(command="true", name="evented")
        wait_until(lambda: any(e["id"] == second.id and e["terminal"] for e in events))
        assert client.feed.mode == "events"
        sub.close()
    finally:
        client._connection.shutdown()
    rows = sqlite3.connect(data_dir / "parallelworks_lab" / "jobs.sqlite").execute(
        "select name, state from jobs order by seq"
    )
    assert list(rows)[:2] == [("solo", "COMPLETED"), ("evented", "COMPLETED")]


@pytest.mark.parametrize(
    ("text", "mib"), [("4096", 4096), ("500M", 500), ("4G", 4096), ("1.5g", 1536), ("1T", 1 << 20)]
)
def test_parse_memory(text, mib):
    assert parse_memory(text) == mib


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("5:30", 6), ("1:30:00", 90), ("2-0", 2880), ("1-02:03", 1563), ("0-0:0:1", 1)],
)
def test_parse_time(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("bad", ["", "1:2:3:4", "x", "0", "1-"])
def test_parse_time_refuses(bad):
    with pytest.raises(ValueError):
        parse_time(bad)


def test_default_working_dir_falls_back_to_the_clusters_own(pw_server, pw_client, monkeypatch):
    """The default is this directory; where the cluster cannot see it, the cluster's default."""
    with pytest.raises(InvalidRequest, match="not an existing directory"):
        pw_client.submit(command="pwd", working_dir="/nonexistent/dir")
    monkeypatch.setattr(client_api, "_resolve_dir", lambda wd: wd or "/nonexistent/dir")
    job = pw_client.submit(command="pwd").wait(timeout=30)
    assert job.logs().strip() == str(pw_server.tmp)


def test_batchspawner_url_without_port_finds_the_parent_servers_runtime_file(monkeypatch, tmp_path):
    # batchspawner writes JUPYTERHUB_SERVICE_URL before the server on the compute node has
    # chosen its port: the kernel's parent server's runtime file has the real address.
    monkeypatch.setattr(discovery, "_ancestor_pids", lambda: [])
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    pid = os.getpid()  # list_running_servers skips files of processes that are gone
    (tmp_path / f"jpserver-{pid}.json").write_text(
        json.dumps(
            {
                "pid": pid,
                "url": "http://node7:41234/user/alice/",
                "base_url": "/user/alice/",
                "token": "",
                "root_dir": "/home/alice",
            }
        )
    )
    hub_env = {
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/alice/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_API_TOKEN": "alice-server-token",
    }
    found = find_server({**hub_env, "JPY_PARENT_PID": str(pid)})
    assert found is not None
    assert (found.url, found.token) == ("http://node7:41234/user/alice/", "alice-server-token")
    with pytest.raises(ServerNotFound, match="names no port yet"):
        find_server({**hub_env, "JPY_PARENT_PID": "1"})
