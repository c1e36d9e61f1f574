"""Definition of done of issue 18: two real Unix accounts on one machine, each with a 0755 home
(what `useradd` makes on Debian 12) and umask 022, each running a real `jupyter server` with the
extension and submitting on `local`, the dev Slurm cluster and the dev Grid Engine cluster. The
other account can read none of the database, the job folders or the output files.

Needs root (to create the accounts and run servers as them): skipped with the reason otherwise,
failing under CI=true.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support.server_process import REPO, free_port, server_app_config
from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry
from .support.waiting import wait_until

USERS = ("pwpriv-a", "pwpriv-b")
TOKEN = "two-users-test-token"
SECRET = "two-users-secret-8d2e"
SLURM_ACCOUNT = "lab"  # dev/slurm/lib.sh: the users' default account


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "the two-account privacy test needs root (useradd, servers run as those users)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true")
    pytest.skip(message)


@pytest.fixture(scope="module")
def accounts() -> Iterator[list[pwd.struct_passwd]]:
    _require_root()
    made = []
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name],
                check=True,
            )
            made.append(name)
        entry = pwd.getpwnam(name)
        os.chmod(entry.pw_dir, 0o755)  # Debian 12's useradd default, asserted here
    yield [pwd.getpwnam(name) for name in USERS]
    for name in made:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def as_user(user: pwd.struct_passwd, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        umask=0o022,
        env={"HOME": user.pw_dir, "PATH": os.environ["PATH"], "USER": user.pw_name},
        capture_output=True,
        text=True,
        **kwargs,
    )


def can_read(user: pwd.struct_passwd, path: str) -> bool:
    """Whether ``user`` can open ``path`` for reading (a folder: list it)."""
    # /bin/sh, not this interpreter: it may live where other accounts cannot run it.
    code = 'if [ -d "$1" ]; then ls -- "$1"; else head -c 1 -- "$1"; fi'
    return as_user(user, ["/bin/sh", "-c", code, "sh", path]).returncode == 0


class UserServer:
    """A real `jupyter server` run as ``user`` (umask 022), with its default data folder."""

    def __init__(self, user: pwd.struct_passwd, clusters: list[dict[str, Any]]) -> None:
        self.user = user
        self.home = Path(user.pw_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/parallelworks-lab"
        config = {
            "ServerApp": server_app_config(self.port, self.home, TOKEN),
            "ParallelWorksLabApp": {"poll_interval": 0.3, "clusters": clusters},
        }
        self.config = self.home / "pwpriv-config.json"
        self.config.write_text(json.dumps(config))
        os.chown(self.config, user.pw_uid, user.pw_gid)
        self.log = self.home / "pwpriv-server.log"
        env = {
            "HOME": str(self.home),
            "USER": user.pw_name,
            "LOGNAME": user.pw_name,
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
        }
        with open(self.log, "wb") as log:
            # Started as root, it drops to the account before the server starts (see there).
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).parent / "support" / "run_as_user.py"),
                    str(user.pw_uid),
                    str(user.pw_gid),
                    "--",
                    f"--config={self.config}",
                ],
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "clusters").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.3)
        raise AssertionError("server did not start: " + self.log.read_text())

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {TOKEN}"}
        return httpx.request(method, f"{self.url}/{path}", headers=headers, timeout=30, **kwargs)

    def submit(self, cluster: str, command: str) -> dict[str, Any]:
        body = {"cluster": cluster, "command": command, "env": {"MY_TOKEN": SECRET}}
        response = self.request("POST", "jobs", json=body)
        assert response.status_code == 201, (cluster, response.text)
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        return wait_until(
            lambda: dict(self.request("GET", f"jobs/{job_id}").json()),
            lambda job: job["terminal"],
            f"job {job_id} ended",
            timeout=timeout,
            interval=0.3,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def slurm_user(info: dict[str, Any], name: str) -> None:
    """Make ``name`` known to slurmdbd (the dev cluster enforces associations)."""
    env = {**os.environ, "SLURM_CONF": info["slurm_conf"]}
    # An association left by an earlier run belongs to an account of the same name that the
    # fixture has since deleted and made again (a new uid): start from a fresh one.
    subprocess.run(
        ["sacctmgr", "-i", "delete", "user", name],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    result = subprocess.run(
        ["sacctmgr", "-i", "add", "user", name, f"account={SLURM_ACCOUNT}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0 or "nothing new" in out.lower(), out
    # slurmdbd tells slurmctld about new associations a moment later; until then sbatch
    # answers "Invalid account". Wait until the controller's own cache has the user.
    deadline = time.monotonic() + 60
    while True:
        known = subprocess.run(
            ["scontrol", "show", "assoc_mgr", f"users={name}", "flags=assoc"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        if f"UserName={name}({pwd.getpwnam(name).pw_uid})" in known:
            return
        assert time.monotonic() < deadline, f"slurmctld never learned of user {name}: {known}"
        time.sleep(0.5)


def test_two_accounts_cannot_read_each_others_jobs(accounts, slurm_cluster, sge_cluster):
    for user in accounts:
        slurm_user(slurm_cluster, user.pw_name)
    clusters = [
        {"id": "local", "kind": "local", "slots": 2},
        {**slurm_cluster_entry("slurm", slurm_cluster), "poll_interval": 0.5},
        sge_cluster_entry("sge", sge_cluster),
    ]
    servers = [UserServer(user, clusters) for user in accounts]
    try:
        files: dict[str, list[str]] = {user.pw_name: [] for user in accounts}
        for server in servers:
            name = server.user.pw_name
            for cluster in ("local", "slurm", "sge"):
                job = server.submit(cluster, f'echo "{cluster} output of {name} $MY_TOKEN"')
                done = server.wait(job["id"])
                assert done["state"] == "COMPLETED", (cluster, done, server.log.read_text())
                out = server.request("GET", f"jobs/{job['id']}/logs").json()["data"]
                assert out.strip() == f"{cluster} output of {name} {SECRET}", (cluster, out)
                files[name] += [done["stdout_path"], done["stderr_path"]]
        for server in servers:
            server.stop()
        for user, other in (accounts, accounts[::-1]):
            data = Path(user.pw_dir) / ".local" / "share" / "jupyter" / "parallelworks_lab"
            db = data / "jobs.sqlite"
            assert db.exists()
            assert SECRET.encode() not in b"".join(
                p.read_bytes() for p in data.glob("jobs.sqlite*") if p.is_file()
            )
            job_dirs = sorted((data / "clusters" / "local" / "jobs").iterdir())
            owned = [
                str(data),
                str(db),
                *[str(p) for p in data.glob("jobs.sqlite-*")],
                *[str(p) for d in job_dirs for p in (d, *d.iterdir())],
                *files[user.pw_name],
            ]
            assert len(files[user.pw_name]) == 6
            for path in owned:
                assert os.path.exists(path), path
                assert not can_read(other, path), f"{other.pw_name} can read {path}"
                assert can_read(user, path), f"{user.pw_name} cannot read its own {path}"
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.stop()
        for user in accounts:
            for name in ("pwpriv-config.json", "pwpriv-server.log"):
                (Path(user.pw_dir) / name).unlink(missing_ok=True)


def test_a_world_readable_store_is_tightened_for_a_real_account(accounts):
    user = accounts[0]
    data = Path(user.pw_dir) / ".local" / "share" / "jupyter" / "parallelworks_lab"
    server = UserServer(user, [{"id": "local", "kind": "local", "slots": 1}])
    try:
        job = server.submit("local", "echo kept")
        assert server.wait(job["id"])["state"] == "COMPLETED"
        before = {j["id"] for j in server.request("GET", "jobs").json()["jobs"]}
    finally:
        server.stop()
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert can_read(accounts[1], str(data / "jobs.sqlite"))
    server = UserServer(user, [{"id": "local", "kind": "local", "slots": 1}])
    try:
        after = {j["id"] for j in server.request("GET", "jobs").json()["jobs"]}
        assert before <= after
        log = server.log.read_text()
        assert "made" in log and "private to you" in log, log
    finally:
        server.stop()
    assert not can_read(accounts[1], str(data / "jobs.sqlite"))
    assert not can_read(accounts[1], str(data))
    shutil.rmtree(data, ignore_errors=True)
