"""Private by default (issue 18): what the extension creates is 0700/0600 whatever the umask,
an existing world-readable install is tightened at start-up, and secret-named env values reach
the job but never the API, the database or a local job's files afterwards."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from parallelworks_lab.backends.sge import with_umask
from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.privacy import is_secret_name, parse_umask, readers, redact_env
from parallelworks_lab.store import JobStore
from parallelworks_lab.transports.ssh_shell import frame, umask_prefix

from .support.api import server_config
from .support.service import build_service

SECRET = "s3cr3t-value-4f1c9a"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def jp_server_config(umask_022, local_cluster):
    # No db_path: the default place under the (test's) Jupyter data dir.
    return server_config(None, [local_cluster], poll_interval=0.2)


def not_private(top: Path) -> list[str]:
    """Every folder under ``top`` that is not 0700 and file that is not 0600 (and top)."""
    wrong = []
    for path in [top, *top.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            wrong.append(f"{path.relative_to(top.parent)} {mode:04o}")
    return wrong


async def test_everything_created_is_private_under_umask_022(api, jp_data_dir, tmp_path):
    data = jp_data_dir / "parallelworks_lab"
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o755)
    job = await api.submit(
        command="echo out; echo err >&2; touch made-by-job; sleep 0.3",
        working_dir=str(work),
        env={"PLAIN": "1"},
    )
    await api.wait(job["id"], {"COMPLETED"})
    status, _ = await api.call("POST", "templates", {"name": "mine", "command": "true"})
    assert status == 201
    assert (data / "jobs.sqlite-wal").exists() and (data / "jobs.sqlite-shm").exists()
    job_dir = data / "clusters" / "local" / "jobs" / job["native_id"]
    names = {p.name for p in job_dir.iterdir()}
    assert {"script.sh", "meta.json", "stdout", "stderr", "started", "exit_code"} <= names
    assert {"cpu_times"} <= names
    assert not_private(data) == []
    # The job's own files follow the cluster's output_umask (default 077); its folder is kept.
    assert stat.S_IMODE((work / "made-by-job").stat().st_mode) == 0o600
    assert stat.S_IMODE(work.stat().st_mode) == 0o755
    # Who can read outputs is part of the cluster summary.
    [cluster] = (await api.get("clusters"))["clusters"]
    assert cluster["outputs_readable_by"] == "only you"
    assert cluster["output_umask"] == "077"


@pytest.fixture
def world_readable_install(jp_data_dir, umask_022):
    """An install from before: jobs in a 0644 store in a 0755 folder, a 0644 job folder file."""
    data = jp_data_dir / "parallelworks_lab"
    data.mkdir(mode=0o755)
    store = JobStore(data / "jobs.sqlite")
    for n in range(3):
        store.insert(
            job_id=f"old{n:09d}",
            cluster="local",
            name=f"old-{n}",
            resources=ResourceRequest(),
            submit_token=f"tok{n}",
            request={"cluster": "local", "command": "true", "env": {"API_TOKEN": SECRET}},
        )
    store.close()
    job_dir = data / "clusters" / "local" / "jobs" / "7"
    job_dir.mkdir(parents=True)
    (job_dir / "stdout").write_text("old output\n")
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return data


async def test_existing_world_readable_install_is_tightened(
    world_readable_install, jp_serverapp, api
):
    data = world_readable_install
    assert not_private(data) == []
    jobs = (await api.get("jobs"))["jobs"]
    assert sorted(j["name"] for j in jobs) == ["old-0", "old-1", "old-2"]
    assert (data / "clusters" / "local" / "jobs" / "7" / "stdout").read_text() == "old output\n"
    # An old row's secret is neither kept nor shown.
    assert SECRET.encode() not in b"".join(
        p.read_bytes() for p in data.glob("jobs.sqlite*") if p.is_file()
    )
    submission = await api.get(f"jobs/{jobs[0]['id']}/submission")
    assert submission["env"] == {"API_TOKEN": ""}
    assert submission["redacted_env"] == ["API_TOKEN"]


def test_tightening_is_logged_once_and_never_loosens(tmp_path, caplog):
    from parallelworks_lab.app import ParallelWorksLabApp

    data = tmp_path / "pw"
    data.mkdir(mode=0o755)
    (data / "jobs.sqlite").write_bytes(b"")
    os.chmod(data / "jobs.sqlite", 0o644)
    (data / "templates").mkdir()
    (data / "templates" / "a.json").write_text("{}")
    os.chmod(data / "templates" / "a.json", 0o400)  # stricter than 0600: left as it is
    app = ParallelWorksLabApp()
    app.log = logging.getLogger("pwlab-test")
    with caplog.at_level(logging.WARNING, logger="pwlab-test"):
        app._make_private(data / "jobs.sqlite")
    [record] = [r for r in caplog.records if "private" in r.getMessage()]
    assert "jobs.sqlite (0644 -> 0600)" in record.getMessage()
    assert stat.S_IMODE((data / "jobs.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "templates" / "a.json").stat().st_mode) == 0o400
    # db_path configured: its folder is the user's and is left alone.
    assert stat.S_IMODE(data.stat().st_mode) in (0o755, 0o700)


async def test_secret_env_reaches_the_job_and_nothing_else(api, jp_data_dir, jp_serverapp):
    events: list[Any] = []
    service = jp_serverapp.web_app.settings["parallelworks_lab_service"]
    service.subscribe(lambda kind, payload: events.append(payload))
    env = {"API_TOKEN": SECRET, "my_secret": SECRET, "DB_PASSWORD": SECRET, "SSH_KEY": SECRET}
    job = await api.submit(
        command='echo "$API_TOKEN $my_secret $DB_PASSWORD $SSH_KEY $PLAIN"; sleep 0.3',
        env={**env, "PLAIN": "visible"},
    )
    done = await api.wait(job["id"], {"COMPLETED", "FAILED"})
    assert done["state"] == "COMPLETED"
    assert (await api.read_all(job["id"])).strip() == " ".join([SECRET] * 4 + ["visible"])
    answers = [
        job,
        done,
        await api.get("jobs"),
        await api.get(f"jobs/{job['id']}"),
        await api.get(f"jobs/{job['id']}/submission"),
        events,
    ]
    assert SECRET not in repr(answers)
    submission = answers[4]
    assert submission["env"] == {**{k: "" for k in env}, "PLAIN": "visible"}
    assert sorted(submission["redacted_env"]) == sorted(env)
    # Sent back as it is, the blank secrets are refused: the user re-enters them.
    status, refused = await api.call("POST", "jobs", submission)
    assert status == 400 and "re-enter" in refused["message"], refused
    assert {e["field"] for e in refused["errors"]} == {f"env.{k}" for k in env}
    # Not in the database's bytes (nor its journals), nor in the local job's folder.
    data = jp_data_dir / "parallelworks_lab"
    service.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in data.rglob("*"):
        if path.is_file() and path.name != "stdout":
            assert SECRET.encode() not in path.read_bytes(), path


def test_secret_names_and_umask_values():
    for name in ("GITHUB_TOKEN", "aws_secret_access_key", "DB_Password", "api_key", "KEYRING"):
        assert is_secret_name(name)
    for name in ("PATH", "HOME", "OMP_NUM_THREADS"):
        assert not is_secret_name(name)
    assert redact_env({"A_TOKEN": "x", "B": "y"}) == {"A_TOKEN": "", "B": "y"}
    assert parse_umask("077") == 0o077 and parse_umask("0007") == 0o007
    for bad in ("77", "8", "0o77", "0777 ", "1077", "abc", ""):
        with pytest.raises(ValueError):
            parse_umask(bad)
    assert readers(0o077) == "only you"
    assert readers(0o007) == "you and your group"
    assert readers(0o022) == "every account on the machine"


def test_output_umask_is_validated(tmp_path):
    def service(umask: str):
        return build_service(tmp_path, [{"id": "local", "kind": "local", "output_umask": umask}])

    assert service("007").list_clusters()[0].outputs_readable_by == "you and your group"
    with pytest.raises(ValueError, match="octal umask"):
        service("77; rm -rf ~")


def test_remote_umask_is_digits_only_and_scoped_to_the_command():
    assert umask_prefix(0o077) == "umask 077; "
    assert umask_prefix(None) == ""
    with pytest.raises(ValueError):
        umask_prefix(0o1000)
    # base64 input: the umask and the command share the pipe's end.
    sent = frame("{ umask 077; 'sbatch'; }", b"\x00binary", "m" * 32).decode()
    assert sent.startswith("(base64 -d | { umask 077; 'sbatch'; })")


def test_sge_script_gets_the_umask_after_its_directives():
    script = "#!/bin/bash\n#$ -l h_rt=60\n\necho hi\n"
    assert with_umask(script, 0o077) == "#!/bin/bash\n#$ -l h_rt=60\n\numask 077\necho hi\n"
    assert with_umask("#!/bin/sh", 0o007) == "#!/bin/sh\numask 007\n"
