"""Notebooks run as jobs: parameters injected as a new cell, the executed copy written beside the
input as `<name>.<jobid>.ipynb`, the job tracked like any other."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from parallelworks_lab import notebook_job
from parallelworks_lab.client import Client
from parallelworks_lab.errors import InvalidRequest

from .support.server_process import TOKEN, Server
from .support.slurm_cluster import slurm_cluster_entry


def make_notebook(path: Path, with_parameters_cell: bool = True) -> Path:
    cells = []
    if with_parameters_cell:
        cells.append(nbformat.v4.new_code_cell("alpha = 1", metadata={"tags": ["parameters"]}))
    cells += [
        nbformat.v4.new_markdown_cell("# Analysis"),
        nbformat.v4.new_code_cell('assert alpha > 0, "alpha must be positive"'),
        nbformat.v4.new_code_cell('print("result:", alpha * 2, label)'),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def outputs_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def test_notebook_job_with_parameters(pw_server, pw_client, tmp_path):
    notebook = make_notebook(tmp_path / "analysis.ipynb")
    job = pw_client.submit_notebook(notebook, {"alpha": 21, "label": 'it\'s "quoted"'})
    assert job.name == "analysis" and job.working_dir == str(tmp_path)
    expected = tmp_path / f"analysis.{job.native_id}.ipynb"
    assert job.output_notebook == str(expected)
    assert str(expected) in job._repr_html_()
    job.wait(timeout=60)
    assert job.state.value == "COMPLETED", job.logs("stderr")
    assert "cell 5/5 done" in job.logs(), job.logs()
    # The sidebar sees it like any other job.
    assert pw_server.get(f"jobs/{job.id}").json()["state"] == "COMPLETED"

    executed = nbformat.read(str(expected), as_version=4)
    injected = executed.cells[1]  # right after the `parameters` cell it overrides
    assert injected.metadata.tags == ["injected-parameters"]
    assert "alpha = 21\n" in injected.source
    assert outputs_text(executed.cells[-1]) == 'result: 42 it\'s "quoted"\n'
    info = executed.metadata["parallelworks_lab"]
    assert (info["status"], info["job_id"]) == ("completed", job.native_id)
    # The input is untouched.
    assert len(nbformat.read(str(notebook), as_version=4).cells) == 4


def test_pw_notebook_magic_and_a_failing_notebook(pw_server, pw_client, tmp_path, monkeypatch):
    make_notebook(tmp_path / "plain.ipynb", with_parameters_cell=False)
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("parallelworks_lab")
    magics = ip.magics_manager.registry["PWMagics"]
    magics.client = pw_client
    try:
        with capture_output() as captured:
            result = ip.run_cell("%pw notebook plain.ipynb -p alpha=-1 -p label=x --wait")
    finally:
        magics.client = None
    assert result.error_in_exec is None, captured.stderr
    job = result.result
    assert (job.state.value, job.exit_code) == ("FAILED", 1)
    assert "alpha must be positive" in captured.stderr
    executed = nbformat.read(job.output_notebook, as_version=4)
    # No parameters cell: the injected cell comes first.
    assert executed.cells[0].metadata.tags == ["injected-parameters"]
    assert "alpha = -1\nlabel = 'x'\n" in executed.cells[0].source
    assert executed.metadata["parallelworks_lab"]["status"] == "failed"
    assert any(o.get("ename") == "AssertionError" for o in executed.cells[2].outputs)


def test_parameters_are_checked_before_submitting(pw_client, tmp_path):
    notebook = make_notebook(tmp_path / "n.ipynb")
    for bad in ({"class": 1}, {"x": float("nan")}, {"x": object()}, {"x": {1: 2}}):
        with pytest.raises(InvalidRequest, match="parameters"):
            pw_client.submit_notebook(notebook, bad)
    with pytest.raises(InvalidRequest, match=r"not an \.ipynb"):
        pw_client.submit_notebook(tmp_path / "n.py")


def test_injection_placement_and_source():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("title"),
            nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(a)"),
        ]
    )
    assert notebook_job.inject_parameters(nb, {"a": [1, {"b": None}]}) == 2
    assert nb.cells[2].source.endswith("a = [1, {'b': None}]\n")
    # Re-running an executed copy replaces the earlier injected cell.
    assert notebook_job.inject_parameters(nb, {"a": True}) == 2
    assert len(nb.cells) == 4 and nb.cells[2].source.endswith("a = True\n")
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(a)")])
    assert notebook_job.inject_parameters(plain, {"a": 1}) == 0


def test_output_names_follow_the_scheduler_id():
    assert notebook_job.output_path("/d/run.v2.ipynb", "17") == "/d/run.v2.17.ipynb"
    assert notebook_job.output_path("/d/a.ipynb", "123_4") == "/d/a.123_4.ipynb"
    assert notebook_job.output_path("/d/a.ipynb", "../x") == "/d/a..._x.ipynb"
    env = notebook_job.job_id_from_env
    assert (
        env({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "5", "SLURM_ARRAY_TASK_ID": "2"}) == "5_2"
    )
    assert env({"SLURM_JOB_ID": "9", "PWLAB_JOB_ID": "3"}) == "9"
    assert env({"PWLAB_JOB_ID": "3"}) == "3"
    assert env({"JOB_ID": "7", "SGE_TASK_ID": "undefined"}) == "7"


def test_script_quotes_paths_and_never_expands_content():
    script = notebook_job.notebook_script(
        "python3", "/data/my $HOME/x'y.ipynb", {"s": "$(rm -rf ~)"}, kernel="py 3"
    )
    last = script.strip().splitlines()[-1]
    assert "'/data/my $HOME/x'\"'\"'y.ipynb'" in last
    assert last.endswith("--kernel 'py 3'")
    assert "<<'PWLAB_EOF_" in script  # quoted here-documents: no expansion inside


@pytest.fixture(scope="module")
def slurm_client(slurm_cluster, tmp_path_factory):
    entry = slurm_cluster_entry("slurm", slurm_cluster)
    entry["python"] = sys.executable
    server = Server(tmp_path_factory.mktemp("pw-slurm"), {"clusters": [entry]})
    server.start()
    client = Client(f"http://127.0.0.1:{server.port}/", TOKEN)
    yield client
    client.close()
    server.stop()


def test_python_cell_and_notebook_job_on_slurm(slurm_client, slurm_cluster):
    workdir = Path(slurm_cluster["scratch_dir"]) / f"nb-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    cell = slurm_client.submit_python(
        "import os; print('slurm job', os.environ['SLURM_JOB_ID'])", working_dir=str(workdir)
    )
    notebook = make_notebook(workdir / "slurm.ipynb")
    job = slurm_client.submit_notebook(notebook, {"alpha": 4, "label": "on-slurm"}, time="5")
    cell.wait(timeout=60)
    assert cell.logs() == f"slurm job {cell.native_id}\n", cell.logs("stderr")
    job.wait(timeout=90)
    assert job.state.value == "COMPLETED", job.logs("stderr")
    # The output is named after Slurm's job id, which the client knew at submit time.
    assert job.output_notebook == str(workdir / f"slurm.{job.native_id}.ipynb")
    executed = nbformat.read(job.output_notebook, as_version=4)
    assert outputs_text(executed.cells[-1]) == "result: 8 on-slurm\n"


def test_resource_form_offers_the_partition_accounts_on_slurm(slurm_client, slurm_cluster):
    """The widget offers the chosen partition's accounts, flags one it does not allow, and the
    job runs under the account picked."""
    from parallelworks_lab.widgets import ResourceForm

    workdir = Path(slurm_cluster["scratch_dir"]) / f"acct-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    form = ResourceForm(cluster="slurm", command='echo "$SLURM_JOB_ACCOUNT"', client=slurm_client)
    form.fields["working_dir"].value = str(workdir)
    account = form.fields["account"]
    # debug is open to any account: the ones offered are the user's own (slurmdbd associations)
    mine = set(account.options)
    assert mine >= set(slurm_cluster["accounting"]["accounts"]), mine
    form.fields["partition"].value = "proj"
    assert list(account.options) == ["physics", "chem"]
    assert list(form.fields["qos"].options) == ["normal", "high"]
    account.value = "bio"
    assert "allowed: physics, chem" in form.errors["account"].value
    assert form.submit_button.disabled
    form.fields["partition"].value = "debug"
    assert set(account.options) == mine
    assert "allowed:" in form.errors["account"].value  # bio is not one of the user's either
    account.value = "physics"
    assert not form.errors["account"].value
    form.submit_button.click()
    job = form.job
    assert job is not None, [e.value for e in form.errors.values()]
    job.wait(timeout=60)
    assert job.state.value == "COMPLETED" and job.logs() == "physics\n", job.logs("stderr")
    form.close()
