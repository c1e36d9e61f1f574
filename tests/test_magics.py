"""Every magic through IPython's InteractiveShell, against the real server extension."""

from __future__ import annotations

import pytest
from IPython.utils.capture import capture_output

from parallelworks_lab.client import Job, Jobs

from .support.shell import one_line_error, run


def test_pw_python_wait_prints_the_remote_output(ip, pw_server):
    result, captured = run(
        ip,
        "%%pw python --wait --name py-cell --cpus-per-task 2\n"
        "import os, sys\n"
        "print('remote says', 6 * 7, os.environ['PWLAB_CPUS_PER_TASK'])\n"
        "print('on stderr', file=sys.stderr)\n",
    )
    assert result.error_in_exec is None, captured.stderr
    assert "remote says 42 2\n" in captured.stdout
    assert "on stderr\n" in captured.stderr
    job = ip.user_ns["_"]
    assert isinstance(job, Job) and job.state.value == "COMPLETED"
    assert pw_server.get(f"jobs/{job.id}").json()["name"] == "py-cell"


def test_pw_submit_returns_the_job_and_line_magics_manage_it(ip, pw_server):
    result, captured = run(ip, "%%pw submit --name sleeper --time 5\nsleep 30\n")
    assert result.error_in_exec is None, captured.stderr
    sleeper = result.result
    assert isinstance(sleeper, Job) and ip.user_ns["_"] is sleeper
    assert sleeper.resources.time_limit_minutes == 5
    # A dependant waits in the queue: hold and release it, then cancel both.
    dependant = ip.run_line_magic("pw", "jobs --limit 1")[0]
    assert dependant.id == sleeper.id
    result, captured = run(ip, f"%%pw submit --after {sleeper.id} --name dependant\necho after\n")
    dependant = result.result
    assert pw_server.wait(dependant.id, {"QUEUED"})["reason"] == "Dependency"
    assert ip.run_line_magic("pw", f"hold {dependant.id}").state.value == "HELD"
    assert ip.run_line_magic("pw", f"release {dependant.id}").state.value == "QUEUED"
    status = ip.run_line_magic("pw", f"status {sleeper.id}")
    assert status.id == sleeper.id and not status.terminal
    with capture_output() as captured:
        cancelled = ip.run_line_magic("pw", f"cancel {sleeper.id}")
    assert cancelled.state.value == "CANCELLED"
    assert f"Cancelled: job {sleeper.id}" in captured.stderr
    assert pw_server.wait(dependant.id, {"CANCELLED"})["reason"] == "DependencyNeverSatisfied"
    # A cancel of a finished job is one clear line.
    result, captured = run(ip, f"%pw cancel {sleeper.id}")
    assert "has already ended" in one_line_error(result, captured)


def test_pw_jobs_status_logs_clusters(ip):
    result, _ = run(ip, "%%pw submit --name talker\necho one\necho two >&2\n")
    job = result.result.wait(timeout=30)
    listed = ip.run_line_magic("pw", "jobs --state finished")
    assert isinstance(listed, Jobs) and job.id in [j.id for j in listed]
    assert "talker" in repr(listed) and "talker" in listed._repr_html_()
    assert ip.run_line_magic("pw", f"status {job.id}").state.value == "COMPLETED"
    with capture_output() as captured:
        ip.run_line_magic("pw", f"logs {job.id}")
        ip.run_line_magic("pw", f"logs {job.id} --stderr")
    assert (captured.stdout, captured.stderr) == ("one\n", "two\n")
    with capture_output() as captured:
        ip.run_line_magic("pw", f"logs {job.id} --follow")
    assert (captured.stdout, captured.stderr) == ("one\n", "two\n")
    clusters = ip.run_line_magic("pw", "clusters")
    assert [c.id for c in clusters] == ["local"] and "local" in clusters._repr_html_()
    with capture_output() as captured:
        assert ip.run_line_magic("pw", "help") is None
    assert "%%pw submit" in captured.stdout


def test_follow_streams_the_log_into_the_cell(ip):
    result, captured = run(
        ip, "%%pw submit --follow\nfor i in 1 2 3; do echo line $i; sleep 0.1; done; exit 2\n"
    )
    assert result.error_in_exec is None
    assert "line 1\nline 2\nline 3\n" in captured.stdout
    assert "FAILED (NonZeroExitCode), exit code 2" in captured.stderr


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%%pw submit --nodes x\necho\n", "%%pw submit: argument --nodes: invalid int value: 'x'"),
        ("%%pw submit --bogus\necho\n", "unrecognized arguments: --bogus"),
        ("%%pw submit --cpus-per-task 3\necho\n", "resources.cpus_per_task: 3 exceeds the limit"),
        ("%%pw submit --mem lots\necho\n", "resources.memory_mb: 'lots' is not a memory size"),
        ("%%pw submit --cluster nowhere\necho\n", "unknown cluster 'nowhere'"),
        # The option reaches the server, which says the local cluster has no accounts.
        ("%%pw submit --account physics\necho\n", "resources.account: is not supported"),
        ("%%pw submit --env novalue\necho\n", "expected NAME=VALUE"),
        ("%%pw submit\n\n", "the cell is empty"),
        ("%%pw jobs\necho\n", "use %pw jobs (one %)"),
        ("%pw submit", "%pw submit needs a cell"),
        ("%pw frobnicate", "unknown command 'frobnicate'"),
        ("%pw status 000000000000", "unknown job '000000000000'"),
        ("%pw status", "the following arguments are required: id"),
        ("%pw logs 'unbalanced", "No closing quotation"),
        ("%pw notebook missing.ipynb", "does not exist"),
        ("%pw notebook x.ipynb -p 1x=2", "not a Python identifier"),
    ],
)
def test_bad_input_is_one_clear_line(ip, cell, expected):
    result, captured = run(ip, cell)
    line = one_line_error(result, captured)
    assert expected in line, line


def test_help_option_prints_usage_without_error(ip):
    result, captured = run(ip, "%%pw submit --help\necho\n")
    assert result.error_in_exec is None
    assert "--cpus-per-task" in captured.stdout
