"""The ipywidgets frontends, built and driven in pytest against the real server extension."""

from __future__ import annotations

import threading

import pytest

from parallelworks_lab.errors import InvalidRequest
from parallelworks_lab.widgets import JobMonitor, JobTable, ResourceForm

from .support.waiting import wait_until


def feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pwlab-feed" and t.is_alive()]


def test_resource_form_limits_errors_and_submit(pw_server, pw_client):
    form = ResourceForm(cluster="local", command="echo from-the-widget", client=pw_client)
    assert "widget-view" in str(form._repr_mimebundle_())
    assert list(form.fields["partition"].options) == ["local"]
    # The local cluster cannot do arrays: the schema has no such field, nor has the form.
    assert "array" not in form.fields and "cpus_per_task" in form.fields

    form.fields["cpus_per_task"].value = 3  # 2 slots
    assert "exceeds the limit of 2" in form.errors["cpus_per_task"].value
    assert form.submit_button.disabled
    with pytest.raises(InvalidRequest):
        form.submit()
    form.fields["cpus_per_task"].value = 1
    form.fields["memory_mb"].value = "lots"
    assert "is not a memory size" in form.errors["memory_mb"].value
    form.fields["memory_mb"].value = "64M"
    form.fields["time_limit_minutes"].value = "0:45"
    assert not any(e.value for e in form.errors.values())
    assert not form.submit_button.disabled

    # A limit only the server knows (tasks x CPUs over the node) comes back inline too.
    form.fields["ntasks"].value = 2
    form.fields["cpus_per_task"].value = 2
    form.submit_button.click()
    assert form.job is None
    assert "exceeds" in form.errors["ntasks"].value
    form.fields["ntasks"].value = 1
    form.fields["cpus_per_task"].value = 1

    form.fields["name"].value = "widget-job"
    submitted = []
    form.on_submit(submitted.append)
    form.submit_button.click()
    job = form.job
    assert job is not None and submitted == [job]
    record = pw_server.get(f"jobs/{job.id}").json()
    assert record["name"] == "widget-job"
    assert record["resources"]["memory_mb"] == 64
    assert record["resources"]["time_limit_minutes"] == 1
    # The form shows a monitor of the job it submitted, kept current by the shared feed.
    monitor = form.monitor
    assert monitor is not None and monitor.job is job
    wait_until(lambda: "COMPLETED" in monitor.state.value, timeout=30)
    wait_until(lambda: "from-the-widget" in monitor.log.value, timeout=10)
    wait_until(lambda: not monitor.listening, timeout=10)  # done: it stops listening
    form.close()


def test_widgets_share_one_feed_and_follow_events(pw_server, pw_client):
    table = JobTable(client=pw_client)
    sleeper = pw_client.submit(command="sleep 30", name="long")
    quick = pw_client.submit(command="echo quick; echo oops >&2", name="quick")
    monitors = [JobMonitor(sleeper), JobMonitor(quick), JobMonitor(pw_client.job(quick.id))]
    try:
        # One thread and one event subscription for all four widgets.
        assert len(feed_threads()) == 1
        wait_until(lambda: pw_client.feed.mode == "events")
        wait_until(lambda: "COMPLETED" in monitors[1].state.value, timeout=30)
        wait_until(lambda: "oops" in monitors[2].log.value, timeout=10)
        assert "quick" in monitors[1].log.value
        # New jobs reach the table by events.
        wait_until(lambda: quick.id in table.table.value and sleeper.id in table.table.value)
        wait_until(lambda: "RUNNING" in monitors[0].state.value, timeout=30)
        assert "elapsed" in wait_until(lambda: monitors[0].elapsed.value)
        # Cancel from the monitor.
        monitors[0].cancel_button.click()
        assert pw_server.wait(sleeper.id, {"CANCELLED"})["state"] == "CANCELLED"
        wait_until(lambda: "CANCELLED" in monitors[0].state.value)
        wait_until(lambda: monitors[0].cancel_button.disabled)
        # Events, not polling: the job list was loaded once per connection.
        assert pw_client.feed.polls <= 2
        table.filter.value = "active"
        assert sleeper.id not in table.table.value
    finally:
        for monitor in monitors:
            monitor.close()
        table.close()
    wait_until(lambda: not feed_threads(), timeout=10)


def test_notebook_form(pw_server, pw_client, tmp_path):
    notebook = tmp_path / "form.ipynb"
    notebook.write_text("{}")
    form = ResourceForm(
        notebook=str(notebook), parameters={"alpha": 0.5}, client=pw_client, monitor=False
    )
    assert form.fields["parameters"].value == "alpha=0.5"
    form.fields["parameters"].value = "alpha=0.5\nnot a parameter"
    assert "expected NAME=VALUE" in form.errors["parameters"].value
    assert form.submit_button.disabled
