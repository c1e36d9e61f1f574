"""Guidance in the notebook frontends, on the built-in `local` cluster of a real server: the
Job repr and ``%pw status`` (why it waits, the start estimate, the efficiency card), templates
in the magics and the ResourceForm, suggestions (never applied without the user), and the
notebook path and cell id a kernel sends."""

from __future__ import annotations

import html
import re
import textwrap
import time
import uuid

import httpx
import pytest
from jupyter_client import BlockingKernelClient

from parallelworks_lab.client import Job, submission_source
from parallelworks_lab.client.source import cell_id, notebook_path, parent_header
from parallelworks_lab.widgets import JobMonitor, ResourceForm

from .support.pw_live import SLOTS, Kernel, server_root
from .support.server_process import TOKEN
from .support.shell import one_line_error, run
from .support.waiting import wait_until
from .support.workloads import HUNGRY

ESTIMATE = re.compile(
    r"expected to start around \d\d:\d\d \(in [12] min\), the scheduler's estimate"
)


def test_waiting_job_status_says_why_and_when(ip, pw_client):
    # Every slot taken by a job whose time limit bounds its end; then one queued behind it.
    blocker = pw_client.submit(command="sleep 60", cpus_per_task=SLOTS, time=2)
    try:
        wait_until(lambda: blocker.refresh().state.value == "RUNNING", timeout=30)
        result, captured = run(ip, "%%pw submit --time 1 --name behind\ntrue\n")
        assert result.error_in_exec is None, captured.stderr
        waiting: Job = result.result
        wait_until(lambda: waiting.refresh().estimated_start is not None, timeout=30)
        assert waiting.reason == "Resources"

        result, captured = run(ip, f"%pw status {waiting.id}")
        assert result.error_in_exec is None, captured.stderr
        status: Job = result.result
        text = repr(status)
        # Shown in the cell (the displayhook prints the repr outside a notebook).
        assert "Why it waits: Your job is next, but the CPUs" in captured.stdout
        assert "in use right now" in text and "(scheduler reason: Resources)" in text
        assert "What you can do: It starts as soon as enough of the partition frees up" in text
        assert ESTIMATE.search(text), text
        assert "Partition: 0 of 1 nodes idle in local (0 CPUs free)" in text
        assert status.partition_load is not None and status.partition_load.nodes_total == 1
        page = html.unescape(status._repr_html_())
        assert "in use right now" in page and ESTIMATE.search(page)
        assert "0 of 1 nodes idle in local" in page

        # The monitor says the same while it waits.
        monitor = JobMonitor(status)
        try:
            assert "in use right now" in monitor.guidance.value
            assert ESTIMATE.search(html.unescape(monitor.guidance.value))
        finally:
            monitor.close()

        # A job held by its user: the reason in words, with what to do.
        ip.run_line_magic("pw", f"hold {waiting.id}")
        held = wait_until(lambda: waiting.refresh().reason == "JobHeldUser" and waiting)
        assert "Why it waits: " in repr(held) and "release" in repr(held).lower()
        assert held.estimated_start is None and "Expected start" not in repr(held)
    finally:
        for job in (blocker, locals().get("waiting")):
            if isinstance(job, Job) and not job.refresh().terminal:
                job.cancel()


def test_finished_job_shows_its_efficiency_card_and_suggests_next_time(ip, pw_client):
    code = f"# {uuid.uuid4()}\n{HUNGRY}"
    result, captured = run(
        ip, f"%%pw python --wait --mem 4G --time 30 --cpus-per-task 2 --name hungry\n{code}"
    )
    assert result.error_in_exec is None, captured.stderr
    job: Job = result.result
    assert job.state.value == "COMPLETED"
    wait_until(lambda: job.refresh().usage is not None, timeout=30)

    result, captured = run(ip, f"%pw status {job.id}")
    text = repr(result.result)
    assert "Why it waits" not in text and "Expected start" not in text
    usage = job.usage
    assert usage is not None and 150 <= (usage.max_memory_mb or 0) <= 400
    memory = re.search(r"Memory: peak (\d+) MiB of 4\.0 GiB requested \((\d+)%\)", text)
    assert memory, text
    assert abs(int(memory.group(1)) - usage.max_memory_mb) <= 1
    assert re.search(r"Time: ran \d+ s of its 30 min limit \((under 1|\d)%\)", text), text
    assert re.search(r"CPU: CPU efficiency \d+% \(\d+ s of CPU time in \d+ s on 2 CPUs\)", text)
    assert "GPUs: 0 requested" in text
    assert "Figures: measured on the job's processes" in text
    assert "Hint: It used " in text and "of the 4.0 GiB it asked for" in text
    assert "Hint: It ran " in text and "30 min limit" in text
    assert "From: " in text and "by " in text
    assert "Memory: peak" in captured.stdout  # what the cell shows
    page = html.unescape(job._repr_html_())
    assert "of the 4.0 GiB it asked for" in page and "Memory" in page

    monitor = JobMonitor(job)
    try:
        assert "used " in monitor.guidance.value.lower()
        assert "of its memory request" in monitor.guidance.value
        assert "of the 4.0 GiB it asked for" in monitor.guidance.value
    finally:
        monitor.close()

    # The same cell again, with --suggest: the suggestion is printed, the request unchanged.
    result, captured = run(ip, f"%%pw python --suggest --mem 8G --time 60\n{code}")
    assert result.error_in_exec is None, captured.stderr
    again: Job = result.result
    try:
        line = next(x for x in captured.stdout.splitlines() if x.startswith("Suggestion:"))
        assert "The last run used at most " in line
        assert "you asked for 8.0 GiB and 1 h." in line
        assert re.search(r"To use it: --mem \d+M --time 5\.$", line), line
        assert again.resources.memory_mb == 8192 and again.resources.time_limit_minutes == 60
    finally:
        again.cancel()
    # A cell that never ran: said so, and submitted as asked.
    result, captured = run(ip, f"%%pw submit --suggest\necho {uuid.uuid4()}\n")
    assert "Suggestion: no earlier run of this cell to learn from yet." in captured.stdout
    assert isinstance(result.result, Job)


@pytest.fixture
def tiny_template(pw_client):
    name = f"tiny {uuid.uuid4().hex[:6]}"
    template = pw_client.save_template(
        name,
        description="one core, 256 MiB, 7 min",
        cluster="local",
        command="echo from-the-template",
        cpus_per_task=1,
        mem="256M",
        time=7,
    )
    yield template
    pw_client.delete_template(name)


def test_templates_in_magics_and_the_form(ip, pw_client, tiny_template):
    name = tiny_template.name
    assert tiny_template.resources == {
        "cpus_per_task": 1,
        "memory_mb": 256,
        "time_limit_minutes": 7,
    }
    listed = ip.run_line_magic("pw", "templates")
    assert name in repr(listed) and "memory_mb=256" in repr(listed)
    assert name in listed._repr_html_()

    # The template's resources, with the options given winning.
    result, captured = run(ip, f"%%pw submit --template '{name}' --time 3\necho from-the-cell\n")
    assert result.error_in_exec is None, captured.stderr
    job: Job = result.result
    assert job.cluster == "local"
    assert (job.resources.memory_mb, job.resources.cpus_per_task) == (256, 1)
    assert job.resources.time_limit_minutes == 3
    assert job.wait(timeout=30).logs() == "from-the-cell\n"
    # Without a body of its own, the template's command runs.
    from_template = pw_client.submit(template=name).wait(timeout=30)
    assert from_template.logs() == "from-the-template\n"
    assert from_template.resources.time_limit_minutes == 7
    # %%pw python takes the template's resources; its cell replaces the template's command.
    result, captured = run(ip, f"%%pw python --wait --template '{name}'\nprint('py', 6 * 7)\n")
    assert "py 42" in captured.stdout and result.result.resources.memory_mb == 256

    result, captured = run(ip, "%%pw submit --template nope\necho\n")
    line = one_line_error(result, captured)
    assert "unknown template 'nope'; available: " in line and repr(name) in line

    form = ResourceForm(template=name, client=pw_client, monitor=False)
    try:
        assert form.cluster_select.value == "local"
        assert form.fields["memory_mb"].value == "256M"
        assert form.fields["time_limit_minutes"].value == "7"
        assert form.fields["cpus_per_task"].value == 1
        assert form.fields["body"].value == "echo from-the-template"
        values = form.values()
        assert (values["memory_mb"], values["time_limit_minutes"]) == (256, 7)
    finally:
        form.close()
    # Explicit arguments win over the template's here too.
    form = ResourceForm(template=name, command="echo mine", client=pw_client, monitor=False)
    assert form.fields["body"].value == "echo mine" and form.fields["memory_mb"].value == "256M"
    form.close()


def test_form_suggestion_fills_memory_and_time_only_on_click(pw_client):
    command = f"echo {uuid.uuid4()}; sleep 1"
    ran = pw_client.submit(command=command, mem="2G", time=45).wait(timeout=30)
    wait_until(lambda: ran.refresh().usage is not None, timeout=30)

    form = ResourceForm(command=command, client=pw_client, monitor=False)
    try:
        shown = form.suggestion.value
        assert "The last run used at most " in shown and "Suggested: memory 256 MiB" in shown
        assert "time limit 5 min" in shown
        assert form.use_suggestion_button.layout.display != "none"
        # Nothing applied yet.
        assert form.fields["memory_mb"].value == ""
        assert form.fields["time_limit_minutes"].value == ""
        assert "memory_mb" not in form.values()
        form.use_suggestion_button.click()
        assert form.fields["memory_mb"].value == "256M"
        assert form.fields["time_limit_minutes"].value == "5"
        values = form.values()
        assert (values["memory_mb"], values["time_limit_minutes"]) == (256, 5)
        # Another command that never ran: the suggestion goes away once typing stops.
        form.fields["body"].value = f"echo {uuid.uuid4()}"
        wait_until(lambda: form.suggestion.value == "", timeout=10)
        assert form.use_suggestion_button.layout.display == "none"
    finally:
        form.close()


# -- where a submission came from ----------------------------------------------------------


class FakeKernel:
    def __init__(self, parent):
        self.parent = parent

    def get_parent(self):
        return self.parent


class FakeShell:
    def __init__(self, parent):
        self.kernel = FakeKernel(parent)


def test_source_reads_session_path_and_cell_id(tmp_path):
    root = str(tmp_path)
    env = {"JPY_SESSION_NAME": str(tmp_path / "sub" / "nb.ipynb")}
    assert notebook_path(env, root) == "sub/nb.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": "/elsewhere/nb.ipynb"}, root) == "/elsewhere/nb.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": "api/path.ipynb"}, root) == "api/path.ipynb"
    assert notebook_path({}, root) is None
    assert notebook_path({"JPY_SESSION_NAME": "a\nb.ipynb"}, root) is None

    header = {"header": {"msg_type": "execute_request"}, "metadata": {"cellId": "c0ffee-1"}}
    assert parent_header(FakeShell(header)) == header
    assert cell_id(header) == "c0ffee-1"
    assert cell_id({"metadata": {}}) is None
    assert cell_id({"metadata": {"cellId": "x" * 300}}) is None
    assert parent_header(object()) is None  # plain IPython, a script: no kernel

    source = submission_source(root, env, shell=FakeShell(header))
    assert source is not None
    assert (source.notebook_path, source.cell_id) == ("sub/nb.ipynb", "c0ffee-1")
    assert submission_source(root, {}, shell=object()) is None
    # Plain IPython (this test process) sends nothing.
    assert submission_source(root, {}) is None


def test_kernel_sends_its_notebook_and_cell(pw_server):
    """A kernel JupyterLab would start: a session for a notebook, an execute request naming
    its cell; the job's provenance names both (the path relative to the server's root)."""
    http = httpx.Client(
        base_url=server_root(pw_server), headers={"Authorization": f"token {TOKEN}"}, timeout=30
    )
    (pw_server.tmp / "work").mkdir(exist_ok=True)
    session = http.post(
        "api/sessions",
        json={
            "path": "work/analysis.ipynb",
            "name": "analysis.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
    )
    session.raise_for_status()
    kernel_id = session.json()["kernel"]["id"]
    client = BlockingKernelClient()
    try:
        connection = pw_server.tmp / "jupyter-runtime" / f"kernel-{kernel_id}.json"
        wait_until(connection.exists, timeout=30)
        client.load_connection_file(str(connection))
        client.start_channels()
        client.wait_for_ready(timeout=60)
        code = textwrap.dedent(
            """
            import parallelworks_lab
            job = parallelworks_lab.Client().submit(command="true", name="from-a-cell")
            print("JOB", job.id)
            """
        )
        msg = client.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {}},
            metadata={"cellId": "cell-42"},
        )
        client.shell_channel.send(msg)
        kernel = Kernel.__new__(Kernel)  # only its output collection
        kernel.client = client
        out = kernel.collect(msg["header"]["msg_id"], timeout=60)
        assert out["error"] is None, out
        job_id = next(x for x in out["stdout"].splitlines() if x.startswith("JOB")).split()[1]
        provenance = pw_server.get(f"jobs/{job_id}").json()["provenance"]
        assert provenance["notebook_path"] == "work/analysis.ipynb"
        assert provenance["cell_id"] == "cell-42"
    finally:
        client.stop_channels()
        http.delete(f"api/sessions/{session.json()['id']}")
        http.close()
        time.sleep(0.1)
