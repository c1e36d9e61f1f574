"""Guidance on the built-in `local` cluster, through the real server extension's REST API:
why a job waits, when it should start, what it used, what to ask for next time, templates and
where a job came from."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from .support.api import SLOTS
from .support.workloads import HUNGRY

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


async def test_efficiency_card_of_a_finished_job(api, jp_root_dir):
    (jp_root_dir / "hungry.py").write_text(HUNGRY)
    job = await api.submit(
        name="hungry",
        command="python3 hungry.py",
        resources={"memory_mb": 4096, "time_limit_minutes": 30, "cpus_per_task": 2},
    )
    done = await api.wait_for(job["id"], lambda j: j["usage"] is not None)
    assert done["state"] == "COMPLETED"
    usage = done["usage"]
    assert usage["source"] == "measured"
    assert 150 <= usage["max_memory_mb"] <= 400, usage
    assert 1.2 <= usage["cpu_seconds"] <= 6, usage
    assert 2 <= usage["elapsed_seconds"] <= 30
    assert usage["cpus"] == 2 and usage["requested_memory_mb"] == 4096
    assert usage["time_limit_seconds"] == 1800
    assert 0 < usage["memory_efficiency"] < 0.25
    assert usage["cpu_efficiency"] == pytest.approx(
        usage["cpu_seconds"] / (usage["elapsed_seconds"] * 2), abs=0.01
    )
    # Far less memory and time than asked: the card says so, with amounts.
    assert any("of the 4.0 GiB it asked for" in hint for hint in usage["hints"]), usage["hints"]
    assert any("30 min limit" in hint for hint in usage["hints"]), usage["hints"]
    assert "of its memory request" in usage["summary"] and "GiB" in usage["summary"]


async def test_reason_in_plain_words_and_start_estimate(api):
    # Fill every slot with a job whose time limit bounds its end, then queue one behind it.
    blocker = await api.submit(
        command="sleep 60", resources={"cpus_per_task": SLOTS, "time_limit_minutes": 2}
    )
    await api.wait_for(blocker["id"], lambda j: j["state"] == "RUNNING")
    waiting = await api.submit(command="true", resources={"time_limit_minutes": 1})
    job = await api.wait_for(waiting["id"], lambda j: j["estimated_start"] is not None)
    assert job["state"] == "QUEUED" and job["reason"] == "Resources"
    explained = job["reason_explained"]
    assert explained["known"] and "in use right now" in explained["summary"]
    assert explained["advice"]
    started = datetime.fromisoformat(blocker["submitted_at"])
    estimate = datetime.fromisoformat(job["estimated_start"])
    # The blocker's start plus its 2-minute limit (within the scheduling delay).
    assert 100 <= (estimate - started).total_seconds() <= 135, (started, estimate)
    assert estimate > datetime.now(timezone.utc)
    # The detail view adds how busy the partition is.
    assert job["partition_load"]["partition"] == "local"
    assert job["partition_load"]["text"] == "0 of 1 nodes idle in local (0 CPUs free)"
    # A job waiting on another says why, with what to do.
    dependent = await api.submit(command="true", after=[waiting["id"]])
    job = await api.wait_for(dependent["id"], lambda j: j["reason"] == "Dependency")
    assert "another job it depends on" in job["reason_explained"]["summary"]
    listed = await api.get("jobs")
    row = next(j for j in listed["jobs"] if j["id"] == dependent["id"])
    assert row["reason_explained"]["code"] == "Dependency"
    await api.call("DELETE", f"jobs/{blocker['id']}")
    done = await api.wait(waiting["id"], TERMINAL)
    assert done["estimated_start"] is None  # only a waiting job has one


async def test_suggestion_from_earlier_runs_of_the_same_script(api, jp_root_dir):
    (jp_root_dir / "hungry.py").write_text(HUNGRY)
    body = {
        "cluster": "local",
        "command": "python3 hungry.py",
        "resources": {"memory_mb": 8192, "time_limit_minutes": 60},
    }
    status, empty = await api.call("POST", "suggestions", body)
    assert status == 200 and empty["runs"] == 0 and empty["message"] is None
    job = await api.submit(**body)
    await api.wait_for(job["id"], lambda j: j["usage"] is not None)
    status, suggestion = await api.call("POST", "suggestions", body)
    assert status == 200, suggestion
    assert suggestion["runs"] == 1 and suggestion["matched_by"] == "script"
    assert suggestion["job_ids"] == [job["id"]]
    assert 256 <= suggestion["resources"]["memory_mb"] <= 768
    assert suggestion["resources"]["time_limit_minutes"] == 5
    assert suggestion["message"].startswith("The last run used at most ")
    assert suggestion["message"].endswith("you asked for 8.0 GiB and 1 h.")
    # Another script with the same job name matches by name; a new one matches nothing.
    status, by_name = await api.call(
        "POST", "suggestions", {**body, "command": "python3 hungry.py --fast", "name": "python3"}
    )
    assert by_name["matched_by"] == "name" and by_name["runs"] == 1
    status, other = await api.call("POST", "suggestions", {**body, "command": "echo other"})
    assert other["runs"] == 0
    status, bad = await api.call("POST", "suggestions", {**body, "cluster": "nowhere"})
    assert status == 400 and bad["errors"][0]["field"] == "cluster"


async def test_provenance_records_notebook_cell_git_commit_and_user(api, jp_root_dir):
    repo = jp_root_dir / "project"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "HOME": str(jp_root_dir)}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}
    for argv in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    job = await api.submit(
        command="true",
        working_dir="project",
        source={"notebook_path": "analysis/run.ipynb", "cell_id": "c0ffee-1"},
    )
    provenance = job["provenance"]
    assert provenance["notebook_path"] == "analysis/run.ipynb"
    assert provenance["cell_id"] == "c0ffee-1"
    assert provenance["git_commit"] == head
    assert provenance["user"]
    # A commit made since is what the next submit records (the repository lookup is cached).
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "y"], cwd=repo, env=env, check=True
    )
    newer = await api.submit(command="true", working_dir="project")
    assert (
        newer["provenance"]["git_commit"]
        == subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert newer["provenance"]["git_commit"] != head
    outside = await api.submit(command="true")
    assert outside["provenance"]["git_commit"] is None
    status, bad = await api.call(
        "POST", "jobs", {"cluster": "local", "command": "true", "source": {"cell_id": "a\nb"}}
    )
    assert status == 400 and bad["errors"][0]["field"] == "source.cell_id"


@pytest.fixture
def site_templates(tmp_path):
    folder = tmp_path / "site-templates"
    folder.mkdir()
    (folder / "small.yaml").write_text(
        "name: Small CPU job\ndescription: one core, 1 GiB, 30 min\ncluster: local\n"
        "resources: {cpus_per_task: 1, memory_mb: 1024, time_limit_minutes: 30}\n"
    )
    (folder / "broken.json").write_text(json.dumps({"name": "Broken", "resources": {"gpus": -1}}))
    return folder


@pytest.fixture
def jp_server_config(tmp_path, local_cluster, site_templates):
    from .support.api import server_config

    config = server_config(tmp_path, [local_cluster], poll_interval=0.2)
    config["ParallelWorksLabApp"]["templates_dir"] = str(site_templates)
    return config


async def test_templates_site_and_user(api):
    listed = (await api.get("templates"))["templates"]
    # The broken site file is skipped (logged), never offered.
    assert [t["name"] for t in listed] == ["Small CPU job"]
    assert listed[0]["read_only"] and listed[0]["source"] == "site"
    small = {"cpus_per_task": 1, "memory_mb": 1024, "time_limit_minutes": 30}
    assert listed[0]["resources"] == small
    mine = {
        "name": "My GPU-less run",
        "cluster": "local",
        "resources": {"time_limit_minutes": 10},
        "command": "python3 train.py",
    }
    status, saved = await api.call("POST", "templates", mine)
    assert status == 201 and saved["source"] == "user" and not saved["read_only"]
    assert saved["resources"] == {"time_limit_minutes": 10}
    names = [t["name"] for t in (await api.get("templates"))["templates"]]
    assert names == ["Small CPU job", "My GPU-less run"]
    # Checked like a submission: over the cluster's limit, a site name, a bad name.
    status, body = await api.call(
        "POST", "templates", {**mine, "resources": {"time_limit_minutes": 100000}}
    )
    assert status == 400 and body["errors"][0]["field"] == "resources.time_limit_minutes"
    status, body = await api.call("POST", "templates", {**mine, "name": "Small CPU job"})
    assert status == 409
    status, body = await api.call("POST", "templates", {**mine, "name": "../etc"})
    assert status == 400 and body["errors"][0]["field"] == "name"
    status, _ = await api.call("DELETE", "templates/Small CPU job")
    assert status == 409
    status, _ = await api.call("DELETE", "templates/My GPU-less run")
    assert status == 204
    status, _ = await api.call("DELETE", "templates/My GPU-less run")
    assert status == 404
