"""Definition of done of issue 15: a real JupyterHub (and its node proxy) with two real Unix
accounts, each single-user server running as its account with the extension configured
site-wide from one file, both submitting to the dev Slurm cluster. Each sees and controls only
its own jobs, through every route; Slurm records each job as its account's; the kernel-side
client of each finds its own server. And a server inside a Slurm job (batchspawner) passes none
of that job's ``SLURM_*`` variables on to the jobs it submits.

Needs root (accounts, servers run as them), the dev Slurm cluster (Debian), jupyterhub (the
test extra) and npm (for the proxy, dev/hub/package.json): skipped with the reason otherwise,
failing under CI=true.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support.server_process import REPO, free_port
from .support.slurm_cluster import slurm_cluster_entry
from .support.user_accounts import UserServer, as_user, real_accounts, require_root, slurm_user

USERS = ("pwhub-a", "pwhub-b")
HUB_DIR = REPO / "dev" / "hub"
SITE_TEMPLATE = "Small CPU job"
PROXY = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
CLIENT_SCRIPT = """
import json
from parallelworks_lab.client import Client, find_server

info = find_server()
jobs = sorted(job.id for job in Client().jobs())
print(json.dumps({"url": info.url, "source": info.source, "jobs": jobs}))
"""


def _cannot_run(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true")
    pytest.skip(message)


def proxy_command() -> str:
    """JupyterHub's proxy, installed from dev/hub's lock file on first use."""
    if not PROXY.exists():
        npm = shutil.which("npm")
        if npm is None:
            _cannot_run("the JupyterHub test needs npm to install configurable-http-proxy")
        subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--prefix", str(HUB_DIR)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return str(PROXY)


@pytest.fixture(scope="module")
def accounts() -> Iterator[list[pwd.struct_passwd]]:
    require_root("the JupyterHub test")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        _cannot_run("the JupyterHub test needs jupyterhub (pip install -e '.[test]')")
    with real_accounts(USERS) as made:
        for user in made:
            # Each run starts from an empty job list (an account kept from an earlier run).
            data = Path(user.pw_dir) / ".local" / "share" / "jupyter" / "parallelworks_lab"
            shutil.rmtree(data, ignore_errors=True)
        yield made
        for user in made:
            user_config(user).unlink(missing_ok=True)


def user_config(user: pwd.struct_passwd) -> Path:
    """A user's own settings for the extension, read after the site's."""
    return Path(user.pw_dir) / ".jupyter" / "jupyter_parallelworks_lab_config.json"


def write_user_config(user: pwd.struct_passwd, config: dict[str, Any]) -> None:
    path = user_config(user)
    as_user(user, ["mkdir", "-p", str(path.parent)])
    path.write_text(json.dumps(config))
    os.chown(path, user.pw_uid, user.pw_gid)


@pytest.fixture
def site_dir() -> Iterator[Path]:
    """The administrator's config folder (what /etc/jupyter is at a site): readable by all."""
    path = Path(tempfile.mkdtemp(prefix="pwlab-hub-site-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_site_config(site: Path, clusters: list[dict[str, Any]]) -> None:
    """The one file an administrator writes (docs/deployment.md): the extension's own config
    file, read by every user's server (installing the package enabled the extension), with a
    folder of site templates."""
    templates = site / "templates"
    templates.mkdir(mode=0o755)
    template = {"name": SITE_TEMPLATE, "description": "one core", "resources": {"cpus_per_task": 1}}
    (templates / "small.json").write_text(json.dumps(template))
    (templates / "small.json").chmod(0o644)
    config = {
        "ParallelWorksLabApp": {
            "clusters": clusters,
            "poll_interval": 0.3,
            "templates_dir": str(templates),
        }
    }
    path = site / "jupyter_parallelworks_lab_config.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o644)


class Hub:
    """A real JupyterHub (LocalProcessSpawner, see tests/support/hub_spawner.py) and its proxy."""

    def __init__(self, workdir: Path, site: Path) -> None:
        self.dir = workdir
        self.service_token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{free_port()}"
        hub_url = f"http://127.0.0.1:{free_port()}"
        proxy_api = f"http://127.0.0.1:{free_port()}"
        config = f"""
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = {self.url!r}
c.JupyterHub.hub_bind_url = {hub_url!r}
c.JupyterHub.db_url = "sqlite:///" + {str(workdir / "jupyterhub.sqlite")!r}
c.JupyterHub.cookie_secret_file = {str(workdir / "cookie_secret")!r}
c.ConfigurableHTTPProxy.command = [{proxy_command()!r}]
c.ConfigurableHTTPProxy.api_url = {proxy_api!r}
c.ConfigurableHTTPProxy.pid_file = {str(workdir / "proxy.pid")!r}
c.JupyterHub.spawner_class = "tests.support.hub_spawner.PreloadingLocalProcessSpawner"
c.Spawner.environment = {{
    "JUPYTER_CONFIG_PATH": {str(site)!r},
    "PYTHONPATH": {str(REPO)!r},
    "PATH": {os.environ["PATH"]!r},
}}
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.Authenticator.allowed_users = {set(USERS)!r}
c.JupyterHub.services = [{{"name": "pwlab-test", "api_token": {self.service_token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "pwlab-test",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens"],
        "services": ["pwlab-test"],
    }}
]
"""
        (workdir / "jupyterhub_config.py").write_text(config)
        self.log = workdir / "jupyterhub.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                cwd=workdir,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(lambda: self.api("GET", "").status_code == 200, "the Hub did not start")

    def _wait(self, ready: Any, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.3)
        raise AssertionError(what + ": " + self.log.read_text()[-5000:])

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The Hub's REST API, through the proxy, as the administrator's service."""
        headers = {"Authorization": f"token {self.service_token}"}
        url = f"{self.url}/hub/api/{path}"
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)

    def log_in(self, name: str) -> HubUser:
        """A token for ``name`` and that user's running server, both through the Hub's API."""
        made = self.api("POST", f"users/{name}/tokens", json={"note": "test", "expires_in": 3600})
        assert made.status_code == 201, made.text
        started = self.api("POST", f"users/{name}/server")
        assert started.status_code in (201, 202), started.text
        self._wait(
            lambda: self.api("GET", f"users/{name}").json()["servers"].get("", {}).get("ready"),
            f"the server of {name} did not start",
        )
        server = self.api("GET", f"users/{name}").json()["servers"][""]
        return HubUser(self, name, made.json()["token"], int(server["state"]["pid"]))

    def stop(self) -> None:
        for name in USERS:
            self.api("DELETE", f"users/{name}/server")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class HubUser:
    def __init__(self, hub: Hub, name: str, token: str, server_pid: int) -> None:
        self.hub, self.name, self.token, self.server_pid = hub, name, token, server_pid
        self.user = pwd.getpwnam(name)

    def request(
        self, method: str, path: str, owner: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Our API on ``owner``'s server (default: this user's), through the Hub's proxy."""
        url = f"{self.hub.url}/user/{owner or self.name}/parallelworks-lab/{path}"
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)

    def submit(self, command: str) -> dict[str, Any]:
        response = self.request("POST", "jobs", json={"cluster": "slurm", "command": command})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def wait(self, job_id: str, until: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.request("GET", f"jobs/{job_id}").json()
            if until(job):
                return job
            time.sleep(0.3)
        raise AssertionError(f"{self.name}: {job_id} never got there: {job}")

    def job_ids(self) -> set[str]:
        response = self.request("GET", "jobs")
        assert response.status_code == 200, response.text
        return {job["id"] for job in response.json()["jobs"]}

    def kernel_client(self) -> dict[str, Any]:
        """What the kernel-side client of this user finds and lists, run as the user with the
        environment the server hands its kernels (read from the running server itself)."""
        raw = Path(f"/proc/{self.server_pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        env["JPY_PARENT_PID"] = str(self.server_pid)  # what a kernel manager adds
        script = self.hub.dir / f"client-{self.name}.py"
        script.write_text(CLIENT_SCRIPT)
        result = subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "support" / "run_as_user.py"),
                str(self.user.pw_uid),
                str(self.user.pw_gid),
                "--script",
                "--",
                str(script),
            ],
            env=env,
            cwd=self.user.pw_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def slurm_owners(info: dict[str, Any], native_ids: list[str]) -> dict[str, str]:
    result = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", "JobID,User", "-j", ",".join(native_ids)],
        env={**os.environ, "SLURM_CONF": info["slurm_conf"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)


def test_two_hub_users_see_and_control_only_their_own_jobs(
    accounts, slurm_cluster, site_dir, tmp_path
):
    for user in accounts:
        slurm_user(slurm_cluster, user.pw_name)
    write_site_config(
        site_dir,
        [{"id": "local", "kind": "local", "slots": 1}, slurm_cluster_entry("slurm", slurm_cluster)],
    )
    # Bob adds a cluster of his own: after the site's, and only for him.
    own_cluster = {"id": "mine", "kind": "local", "slots": 1}
    write_user_config(accounts[1], {"ParallelWorksLabApp": {"extra_clusters": [own_cluster]}})
    hub = Hub(tmp_path, site_dir)
    try:
        alice, bob = (hub.log_in(name) for name in USERS)
        for user, expected in ((alice, ["local", "slurm"]), (bob, ["local", "slurm", "mine"])):
            clusters = user.request("GET", "clusters").json()["clusters"]
            assert [c["id"] for c in clusters] == expected
            templates = user.request("GET", "templates").json()["templates"]
            assert [(t["name"], t["read_only"]) for t in templates] == [(SITE_TEMPLATE, True)]
        # Who the job runs as, and that the server's Hub token did not come along.
        mine = alice.submit('echo "output of $(id -un)"; printenv JUPYTERHUB_API_TOKEN || true')
        theirs = bob.submit("sleep 60")
        bob.wait(theirs["id"], lambda job: job["state"] in ("QUEUED", "RUNNING"))
        done = alice.wait(mine["id"], lambda job: job["terminal"])
        assert done["state"] == "COMPLETED", done
        logs = alice.request("GET", f"jobs/{mine['id']}/logs").json()
        assert logs["data"].strip() == f"output of {alice.name}"

        assert alice.job_ids() == {mine["id"]}
        assert bob.job_ids() == {theirs["id"]}

        # Bob's job, by its id or its Slurm number, through Alice's own server: unknown there.
        for ident in (theirs["id"], theirs["native_id"]):
            for method, path in (
                ("GET", f"jobs/{ident}"),
                ("GET", f"jobs/{ident}/logs"),
                ("DELETE", f"jobs/{ident}"),
                ("POST", f"jobs/{ident}/hold"),
                ("POST", f"jobs/{ident}/release"),
            ):
                response = alice.request(method, path)
                assert response.status_code == 404, (method, path, response.text)
        # Bob's server, with Alice's token: the Hub does not let her in at all.
        for method, path in (
            ("GET", "jobs"),
            ("POST", "jobs"),
            ("GET", f"jobs/{theirs['id']}"),
            ("GET", f"jobs/{theirs['id']}/logs"),
            ("DELETE", f"jobs/{theirs['id']}"),
            ("POST", f"jobs/{theirs['id']}/hold"),
            ("POST", f"jobs/{theirs['id']}/release"),
        ):
            response = alice.request(method, path, owner=bob.name, follow_redirects=False)
            assert response.status_code == 403, (method, path, response.text)
            assert theirs["id"] not in response.text
        still = bob.request("GET", f"jobs/{theirs['id']}").json()
        assert still["state"] in ("QUEUED", "RUNNING"), still

        owners = slurm_owners(slurm_cluster, [mine["native_id"], theirs["native_id"]])
        assert owners == {mine["native_id"]: alice.name, theirs["native_id"]: bob.name}

        # The kernel-side client of each user reaches that user's server, and only it.
        for user, job in ((alice, mine), (bob, theirs)):
            found = user.kernel_client()
            assert f"/user/{user.name}/" in found["url"], found
            assert found["source"] == "JupyterHub environment", found
            assert found["jobs"] == [job["id"]], found

        assert bob.request("DELETE", f"jobs/{theirs['id']}").status_code in (200, 202, 204)
        cancelled = bob.wait(theirs["id"], lambda job: job["terminal"])
        assert cancelled["state"] == "CANCELLED", cancelled
    finally:
        hub.stop()


def test_a_server_inside_a_slurm_job_submits_jobs_without_that_jobs_slurm_variables(
    accounts, slurm_cluster
):
    user = accounts[0]
    slurm_user(slurm_cluster, user.pw_name)
    home = Path(user.pw_dir)
    captured = home / "enclosing-job.env"
    captured.unlink(missing_ok=True)
    # The batchspawner case: the server's environment is that of a real, running Slurm job,
    # with options a submitted job would not set for itself (tasks per node, memory per CPU).
    enclosing = as_user(
        user,
        [
            "env",
            f"SLURM_CONF={slurm_cluster['slurm_conf']}",
            "sbatch",
            "--parsable",
            "--job-name=enclosing-server",
            "--ntasks=2",
            "--ntasks-per-node=2",
            "--mem-per-cpu=64",
            "--output=/dev/null",
            "--wrap",
            f"env -0 > {captured}; sleep 120",
        ],
        cwd=home,
    )
    assert enclosing.returncode == 0, enclosing.stderr
    enclosing_id = enclosing.stdout.strip().split(";")[0]
    env = {**os.environ, "SLURM_CONF": slurm_cluster["slurm_conf"]}
    server = None
    try:
        deadline = time.monotonic() + 60
        while not (captured.exists() and captured.stat().st_size):
            assert time.monotonic() < deadline, "the enclosing job never started"
            time.sleep(0.3)
        time.sleep(0.3)  # env -0 has finished writing once the job sleeps
        job_env = dict(
            item.split("=", 1) for item in captured.read_text().split("\0") if "=" in item
        )
        assert job_env["SLURM_JOB_ID"] == enclosing_id
        assert job_env["SLURM_MEM_PER_CPU"] == "64"
        server = UserServer(user, [slurm_cluster_entry("slurm", slurm_cluster)], job_env)
        job = server.request(
            "POST",
            "jobs",
            json={"cluster": "slurm", "command": "env | grep -E '^SLURM' | sort"},
        ).json()
        done = server.wait(job["id"])
        assert done["state"] == "COMPLETED", (done, server.log.read_text())
        out = server.request("GET", f"jobs/{job['id']}/logs").json()["data"]
        submitted = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert submitted["SLURM_JOB_ID"] == done["native_id"] != enclosing_id
        assert submitted["SLURM_JOB_NAME"] != "enclosing-server"
        # Options of the enclosing job that the submitted one did not ask for stay behind.
        for name in ("SLURM_MEM_PER_CPU", "SLURM_NTASKS_PER_NODE"):
            assert name not in submitted, (name, out)
        assert submitted.get("SLURM_NTASKS", "1") == "1", out
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["scancel", enclosing_id], env=env, check=False, timeout=30)
        captured.unlink(missing_ok=True)
        for name in ("pwpriv-config.json", "pwpriv-server.log"):
            (home / name).unlink(missing_ok=True)
