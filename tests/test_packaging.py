"""The wheel is what end users get: it must work with no Node.js anywhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from .support.server_process import free_port

REPO = Path(__file__).resolve().parents[1]
LABEXT = REPO / "parallelworks_lab" / "labextension"
LAB_TOKEN = "wheel-check-token"


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # drop colours


def source_tree(dest: Path) -> Path:
    """The tracked files plus the built labextension: a clean clone after `make build`."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    # install.json is written into the labextension by `labextension develop`: not part of a build.
    shutil.copytree(
        LABEXT,
        dest / "parallelworks_lab" / "labextension",
        ignore=shutil.ignore_patterns("install.json"),
        symlinks=False,
    )
    return dest


@pytest.mark.slow
# Builds the wheel and installs it with JupyterLab into a fresh venv: ~90 s on an idle 2-core
# machine, much more on a loaded one; the default 120 s left no margin.
@pytest.mark.timeout(600)
def test_wheel_installs_and_enables_both_extensions_without_node(tmp_path):
    if not (LABEXT / "static" / "style.js").exists():
        pytest.fail("the labextension is not built: run `make build` (make test does it first)")
    src = source_tree(tmp_path / "src")
    # A PATH with Python and nothing else: no node, no jlpm.
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    os.symlink(sys.executable, bare / "python")
    env = {
        "PATH": str(bare),
        "HOME": str(tmp_path / "home"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for key in (
        "PIP_FIND_LINKS",
        "PIP_EXTRA_INDEX_URL",
        "PIP_INDEX_URL",
        "PIP_CERT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_CONSTRAINT",
        "XDG_CACHE_HOME",
        "PIP_CACHE_DIR",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    assert shutil.which("node", path=env["PATH"]) is None

    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ],
        env,
    )
    [wheel] = dist.glob("parallelworks_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.data/data"
    assert f"{data}/etc/jupyter/jupyter_server_config.d/parallelworks_lab.json" in names
    assert f"{data}/share/jupyter/labextensions/parallelworks-lab/install.json" in names
    assert f"{data}/share/jupyter/labextensions/parallelworks-lab/package.json" in names
    assert any(
        n.startswith(f"{data}/share/jupyter/labextensions/parallelworks-lab/static/") for n in names
    )
    assert "parallelworks_lab/backends/local_job.sh" in names
    assert "parallelworks_lab/events/job-state.yaml" in names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{bare}"
    assert shutil.which("node", path=env["PATH"]) is None
    # The wheel alone: whatever `jupyter lab` needs must come with it (README's next steps).
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], env)
    assert run([str(venv / "bin" / "jupyter"), "lab", "--version"], env).strip().startswith("4.")

    server = run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], env)
    assert "parallelworks_lab enabled" in server, server
    assert "parallelworks_lab" in server and " OK" in server.split("parallelworks_lab", 1)[1]
    lab = run([str(venv / "bin" / "jupyter"), "labextension", "list"], env)
    line = next((ln for ln in lab.splitlines() if "parallelworks-lab" in ln), "")
    assert "enabled" in line and "OK" in line, lab
    check_lab_starts(venv, env, tmp_path)


def check_lab_starts(venv: Path, env: dict[str, str], tmp_path: Path) -> None:
    """`jupyter lab` from the installed wheel serves /lab with our extension, and our API."""
    port = free_port()
    root = tmp_path / "lab-root"
    root.mkdir()
    args = [
        str(venv / "bin" / "jupyter"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={LAB_TOKEN}",
        f"--ServerApp.root_dir={root}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    log = (tmp_path / "lab.log").open("wb")
    lab = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {LAB_TOKEN}"}
    try:
        deadline = time.monotonic() + 90
        page = None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                page = httpx.get(f"{base}/lab", headers=headers, timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        output = (tmp_path / "lab.log").read_text(errors="replace")
        assert page is not None, f"jupyter lab did not answer:\n{output}"
        assert page.status_code == 200, (page.status_code, output)
        # The page config lists the prebuilt extensions JupyterLab will load.
        assert "parallelworks-lab" in page.text, output
        clusters = httpx.get(f"{base}/parallelworks-lab/clusters", headers=headers, timeout=10)
        assert clusters.status_code == 200, (clusters.text, output)
        assert [c["id"] for c in clusters.json()["clusters"]] == ["local"]
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
