"""Definition of done of issue 18: two real Unix accounts on one machine, each with a 0755 home
(what `useradd` makes on Debian 12) and umask 022, each running a real `jupyter server` with the
extension and submitting on `local`, the dev Slurm cluster and the dev Grid Engine cluster. The
other account can read none of the database, the job folders or the output files.

Needs root (to create the accounts and run servers as them): skipped with the reason otherwise,
failing under CI=true.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.sge_cluster import sge_cluster_entry
from .support.slurm_cluster import slurm_cluster_entry
from .support.user_accounts import (
    SECRET,
    UserServer,
    can_read,
    real_accounts,
    require_root,
    slurm_user,
)

USERS = ("pwpriv-a", "pwpriv-b")


@pytest.fixture(scope="module")
def accounts() -> Iterator[list[pwd.struct_passwd]]:
    require_root("the two-account privacy test")
    with real_accounts(USERS) as made:
        yield made


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
