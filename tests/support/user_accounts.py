"""Real Unix accounts for the multi-user tests (tests/test_two_users.py, tests/test_hub.py):
made and removed by root, with a 0755 home (Debian 12's ``useradd`` default) and umask 022, a
fresh Slurm association each, and a real ``jupyter server`` run as one of them."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

from .server_process import REPO, free_port, server_app_config
from .waiting import wait_until

TOKEN = "two-users-test-token"
SECRET = "two-users-secret-8d2e"
SLURM_ACCOUNT = "lab"  # dev/slurm/lib.sh: the users' default account


def require_root(what: str) -> None:
    """Skip ``what`` with the reason where this is not root; fail under CI=true."""
    if os.geteuid() == 0:
        return
    message = f"{what} needs root (useradd, servers run as those users)"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " and CI=true")
    pytest.skip(message)


@contextmanager
def real_accounts(names: tuple[str, ...]) -> Iterator[list[pwd.struct_passwd]]:
    """The accounts ``names`` (made when missing, removed afterwards if made here)."""
    made = []
    for name in names:
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
    try:
        yield [pwd.getpwnam(name) for name in names]
    finally:
        for name in made:
            remove_account(name)


def remove_account(name: str, timeout: float = 20) -> None:
    """``userdel``, waiting for the account's last processes (a cancelled job's slurmstepd)."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        # Exit 8: the account still runs processes (userdel(8)).
        if result.returncode != 8 or time.monotonic() > deadline:
            return
        time.sleep(0.5)


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

    def __init__(
        self,
        user: pwd.struct_passwd,
        clusters: list[dict[str, Any]],
        environ: Optional[dict[str, str]] = None,
    ) -> None:
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
            **(environ or {}),  # e.g. the environment of the Slurm job the server runs in
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
                    str(Path(__file__).with_name("run_as_user.py")),
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
