"""Submit overhead on the Slurm test cluster, every path measured side by side in one run.

- bare ``sbatch`` (the same options and script our backend sends, script on stdin);
- the HTTP floor: an authenticated ``GET /clusters`` to the same server (the least any REST
  call costs here);
- our ``POST /jobs`` on the ``local`` transport (the login node) and over SSH, both with the
  next sbatch started ahead of each submit (the default), and on ``local`` with nothing started
  ahead too (what the first submit after a quiet minute costs);
- jupyterlab-slurm's ``POST /jupyterlab_slurm/sbatch`` (a script file path) beside its own bare
  ``sbatch <file>`` and its own floor, when it can be installed (into bench/.cache/peer, with
  pip, once); "not installed" otherwise.

With 120 held jobs queued, one persistent HTTP/1.1 connection per server (the standard
library's client, keeping the login cookie as a browser does), a warm-up, then rounds that
call every path once each (so machine noise hits them alike); median and p95 of each. Overhead
is the median over rounds of a path minus its bare sbatch in the same round (paired: a slow
moment slows the whole round and drops out), and "vs the floor" likewise minus the floor too.
Targets: ours at most half the peer's on ``local``, and within 1.5 ms of the HTTP floor on both
transports.

Where our time goes is measured apart, in this process: the transport alone (``local``: a
child started with vfork, read from the event loop; the SSH command channel), the
store's two writes, and the server's own time (Server-Timing). The working directory is checked
in the same exchange as sbatch (``cwd``), on both transports.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import httpx

from parallelworks_lab.backends.base import BackendContext, SubmitRequest
from parallelworks_lab.backends.slurm import SlurmBackend
from parallelworks_lab.models import JobSubmit, ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore
from parallelworks_lab.transports.local import LocalTransport, LocalTransportSettings
from parallelworks_lab.transports.ssh import SSHTransport, SSHTransportSettings
from tests.support.dev_cluster import transport_entry
from tests.support.server_process import TOKEN, Server, free_port
from tests.support.slurm_cluster import slurm_cluster_entry, start_slurm

REPO = Path(__file__).resolve().parents[1]

HEADERS = {"Authorization": f"token {TOKEN}"}
NAME = "pwlab-bench-submit"
COMMAND = "true"
QUEUED = 120
ROUNDS = 40
LOOP = 20  # submits per back-to-back block
SETTLE = 0.02  # seconds between timed calls of the interleaved rounds
PEER = "jupyterlab-slurm==4.1.0"
PEER_DIR = REPO / "bench" / ".cache" / "peer"


def p50_p95(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20)[-1]


def backend_sbatch(info: dict[str, Any]) -> tuple[list[str], str]:
    """The sbatch argv and script our Slurm backend sends for the benchmark's REST submit."""
    scratch = info["scratch_dir"]
    entry = slurm_cluster_entry("slurm", info)
    options = {k: v for k, v in entry.items() if k not in ("id", "kind", "poll_interval")}
    context = BackendContext(cluster_id="bench", state_dir=Path(scratch), root_dir=Path(scratch))
    backend = SlurmBackend.from_config(options, context)
    assert isinstance(backend, SlurmBackend)
    script = JobSubmit(cluster="bench", command=COMMAND).batch_script()
    request = SubmitRequest(
        job_id=uuid.uuid4().hex[:12],
        submit_token=uuid.uuid4().hex,
        name=NAME,
        script=script,
        resources=ResourceRequest(partition=info["default_partition"]),
        working_dir=scratch,
    )
    return backend.sbatch_argv(request, scratch), script


def install_peer() -> Optional[Path]:
    """jupyterlab-slurm in a folder of its own (its one dependency, jupyter-server, is ours)."""
    marker = PEER_DIR / "jupyterlab_slurm" / "__init__.py"
    if not marker.exists():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(PEER_DIR),
                PEER,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            print(f"  ({PEER} could not be installed: {result.stderr.strip()[-200:]})")
            return None
    return PEER_DIR


class PeerServer:
    """A jupyter server with only jupyterlab-slurm, against the same cluster (SLURM_CONF)."""

    def __init__(self, tmp: Path, peer_dir: Path, slurm_conf: str) -> None:
        self.tmp, self.peer_dir, self.slurm_conf = tmp, peer_dir, slurm_conf
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(self.peer_dir),
            "SLURM_CONF": self.slurm_conf,
            "JUPYTER_CONFIG_DIR": str(self.tmp / "config"),
            "JUPYTER_DATA_DIR": str(self.tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
        }
        log = (self.tmp / "peer-server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                "--port-retries=0",
                "--no-browser",
                "--allow-root",
                f"--IdentityProvider.token={TOKEN}",
                "--ServerApp.jpserver_extensions={'jupyterlab_slurm': True}",
                f"--ServerApp.root_dir={self.tmp}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.base}/jupyterlab_slurm/status", headers=HEADERS)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the peer's server did not start; see {self.tmp}/peer-server.log")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class KeepAlive:
    """One persistent HTTP/1.1 connection to a server, keeping its login cookie as a browser
    does. The standard library's client costs well under a millisecond less per request than
    httpx here; what a client spends is in every path alike (and cancels out against the
    floor), but it would blur the peer's overhead against ours, so the lighter one is used."""

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.prefix = url.path.rstrip("/")
        self.conn = http.client.HTTPConnection(url.host, url.port, timeout=30)
        self.cookie = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        headers = dict(HEADERS)
        if self.cookie:
            headers["Cookie"] = self.cookie
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        self.conn.request(method, self.prefix + path, body=data, headers=headers)
        response = self.conn.getresponse()
        text = response.read()
        if cookie := response.getheader("Set-Cookie"):
            self.cookie = cookie.split(";", 1)[0]
        return response.status, dict(response.getheaders()), json.loads(text) if text else None

    def close(self) -> None:
        self.conn.close()


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def queue_held_jobs(info: dict[str, Any], env: dict[str, str]) -> None:
    for _ in range(QUEUED):
        subprocess.run(
            [
                "sbatch",
                "-H",
                f"--job-name={NAME}-queued",
                "-p",
                info["default_partition"],
                "-t",
                "10",
                f"--chdir={info['scratch_dir']}",
                "--output=/dev/null",
                "--wrap",
                "sleep 300",
            ],
            env=env,
            check=True,
            capture_output=True,
        )


def in_process_breakdown(
    info: dict[str, Any], sbatch: list[str], script: str
) -> dict[str, tuple[float, float]]:
    """Each part of a submit on its own, in this process (p50 and p95, ms)."""
    slurm_env = {"SLURM_CONF": info["slurm_conf"]}
    scratch = info["scratch_dir"]
    loop = asyncio.new_event_loop()
    local = LocalTransport(LocalTransportSettings())
    ssh = SSHTransport(SSHTransportSettings(**transport_entry("slurm-ssh", info)))
    store = JobStore(Path(tempfile.mkdtemp(prefix="pwlab-bench-store-")) / "jobs.sqlite")

    def via(transport: Any) -> Callable[[], None]:
        def run() -> None:
            result = loop.run_until_complete(
                transport.run(sbatch, input=script, env=slurm_env, umask=0o077, cwd=scratch)
            )
            assert result.returncode == 0, result.stderr

        return run

    def store_writes() -> None:
        job_id = uuid.uuid4().hex[:12]
        store.insert(
            job_id=job_id,
            cluster="bench",
            name=NAME,
            resources=ResourceRequest(),
            submit_token=uuid.uuid4().hex,
            request={"cluster": "bench", "command": COMMAND},
            working_dir=scratch,
        )
        store.update(job_id, native_id="1", state=JobState.QUEUED, raw_state="PENDING")

    parts = {
        "sbatch started by the local transport": via(local),
        "sbatch over an SSH command channel (in its dir)": via(ssh),
        "SQLite insert + update": store_writes,
    }
    samples: dict[str, list[float]] = {name: [] for name in parts}
    try:
        for fn in parts.values():
            fn()
        for _ in range(ROUNDS):
            for name, fn in parts.items():
                samples[name].append(timed(fn))
    finally:
        loop.run_until_complete(local.close())
        loop.run_until_complete(ssh.close())
        loop.close()
        store.close()
    return {name: p50_p95(values) for name, values in samples.items()}


def bench_submit(info: dict[str, Any]) -> bool:
    slurm_env = {"SLURM_CONF": info["slurm_conf"]}
    env = {**os.environ, **slurm_env}
    scratch = info["scratch_dir"]
    sbatch, script = backend_sbatch(info)
    tmp = Path(tempfile.mkdtemp(prefix="pwlab-bench-submit-"))
    peer_script = tmp / "peer-job.sh"
    peer_script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name={NAME}\n#SBATCH -p {info['default_partition']}\n"
        f"#SBATCH --output=/dev/null\n{COMMAND}\n"
    )
    peer_dir = install_peer()
    server = Server(
        tmp / "ours",
        {
            "clusters": [
                slurm_cluster_entry("slurm", info) | {"poll_interval": 5.0},
                slurm_cluster_entry("slurm", info)
                | {
                    "id": "slurm-cold",
                    "poll_interval": 5.0,
                    "transport": {"type": "local", "start_ahead_seconds": 0},
                },
                slurm_cluster_entry("slurm-ssh", info) | {"poll_interval": 5.0},
            ],
            "poll_interval": 5.0,
        },
    )
    (tmp / "ours").mkdir()
    peer = None
    if peer_dir is not None:
        (tmp / "peer").mkdir()
        peer = PeerServer(tmp / "peer", peer_dir, info["slurm_conf"])
    app_ms: dict[str, list[float]] = {"local": [], "local, cold": [], "ssh": []}
    samples: dict[str, list[float]] = {}
    loops: dict[str, list[float]] = {}
    try:
        queue_held_jobs(info, env)
        server.start()
        if peer is not None:
            peer.start()
        ours = KeepAlive(server.url)
        theirs = KeepAlive(peer.base if peer is not None else server.url)

        def rest(cluster: str, key: str) -> Callable[[], None]:
            def submit() -> None:
                status, headers, answer = ours.call(
                    "POST",
                    "/jobs",
                    {
                        "cluster": cluster,
                        "name": NAME,
                        "command": COMMAND,
                        "working_dir": scratch,
                    },
                )
                assert status == 201, answer
                app_ms[key].append(float(headers["Server-Timing"].split("dur=")[1]))

            return submit

        def bare() -> None:
            subprocess.run(sbatch, env=env, input=script.encode(), check=True, capture_output=True)

        def floor() -> None:
            assert ours.call("GET", "/clusters")[0] == 200

        paths: dict[str, Callable[[], None]] = {
            "bare sbatch (ours: options, stdin)": bare,
            "HTTP floor (GET /clusters)": floor,
            "ours, local transport": rest("slurm", "local"),
            "ours, local, nothing started ahead": rest("slurm-cold", "local, cold"),
            "ours, SSH": rest("slurm-ssh", "ssh"),
        }
        if peer is not None:

            def peer_bare() -> None:
                subprocess.run(
                    ["sbatch", str(peer_script)],
                    env=env,
                    cwd=scratch,
                    check=True,
                    capture_output=True,
                )

            def peer_submit() -> None:
                status, _, answer = theirs.call(
                    "POST",
                    "/jupyterlab_slurm/sbatch",
                    {"inputPath": str(peer_script), "outputPath": scratch},
                )
                assert status == 200 and answer["success"], answer

            def peer_floor() -> None:
                assert theirs.call("GET", "/jupyterlab_slurm/status")[0] == 200

            paths |= {
                "bare sbatch (peer: script file)": peer_bare,
                "peer HTTP floor (GET status)": peer_floor,
                "jupyterlab-slurm": peer_submit,
            }
        for fn in paths.values():
            for _ in range(3):
                fn()
        for values in app_ms.values():
            values.clear()
        samples = {name: [] for name in paths}
        for _ in range(ROUNDS):
            for name, fn in paths.items():
                samples[name].append(timed(fn))
                # What a call leaves running (the next sbatch starting ahead, ~4 ms of CPU)
                # must not land on the next path's clock: each is timed on a quiet machine.
                time.sleep(SETTLE)
        # A notebook loop instead: submits back to back, so each overlaps the start of the
        # sbatch started ahead for the next one.
        for _ in range(2):
            for cluster in ("slurm", "slurm-cold"):
                submit = rest(cluster, "local" if cluster == "slurm" else "local, cold")
                loops.setdefault(cluster, []).extend(timed(submit) for _ in range(LOOP))
                time.sleep(SETTLE)
        ours.close()
        theirs.close()
        breakdown = in_process_breakdown(info, sbatch, script)
    finally:
        subprocess.run(["scancel", "-n", NAME], env=env, check=False)
        subprocess.run(["scancel", "-n", f"{NAME}-queued"], env=env, check=False)
        server.stop()
        if peer is not None:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    stats = {name: p50_p95(values) for name, values in samples.items()}
    print(
        f"Submit, ms (Slurm test cluster, {QUEUED} jobs queued, one persistent HTTP client per "
        f"server, {ROUNDS} submits each after warm-up, interleaved)"
    )
    print(
        f"  {'path':38s} {'p50':>7s} {'p95':>7s}   overhead: p50 of (path - its bare sbatch), "
        "and of (path - bare sbatch - floor), each of the same round"
    )
    bare = samples["bare sbatch (ours: options, stdin)"]
    floor = samples["HTTP floor (GET /clusters)"]
    # Paired: a slow moment of the machine slows every path of that round alike, and drops
    # out of the differences; the difference of two medians keeps it.
    overhead: dict[str, float] = {}
    over_floor: dict[str, float] = {}
    for name, (p50, p95) in stats.items():
        extra = ""
        if name.startswith("ours"):
            path = samples[name]
            overhead[name] = statistics.median(p - b for p, b in zip(path, bare))
            over_floor[name] = statistics.median(p - b - f for p, b, f in zip(path, bare, floor))
            extra = f"{overhead[name]:+6.1f}  ({over_floor[name]:+.1f} vs the floor)"
        elif name == "jupyterlab-slurm":
            peer_bare = samples["bare sbatch (peer: script file)"]
            overhead[name] = statistics.median(p - b for p, b in zip(samples[name], peer_bare))
            extra = f"{overhead[name]:+6.1f}"
        print(f"  {name:38s} {p50:7.1f} {p95:7.1f}   {extra}")
    if peer is None:
        print(f"  {'jupyterlab-slurm':38s} not installed")
    print(f"  a loop of {LOOP} submits back to back (x2), local transport, per submit:")
    for cluster, label in (("slurm", "started ahead"), ("slurm-cold", "nothing started ahead")):
        p50, p95 = p50_p95(loops[cluster])
        print(f"    {label:36s} {p50:7.1f} {p95:7.1f}")
    for key in app_ms:
        p50, p95 = p50_p95(app_ms[key])
        print(f"  server's own time (Server-Timing), {key}: p50 {p50:.1f}, p95 {p95:.1f}")
    print("  the parts, in this process (p50 / p95 ms):")
    for name, (p50, p95) in breakdown.items():
        print(f"    {name:48s} {p50:6.2f} / {p95:6.2f}")
    within = {k: v <= 1.5 for k, v in over_floor.items()}
    print(
        "  target: overhead within 1.5 ms of the floor -> "
        + ", ".join(f"{k[6:]} {'PASS' if v else 'MISS'}" for k, v in within.items())
    )
    # The target is on what a researcher gets submitting again; the first submit after a
    # minute without one starts its own sbatch (printed above, not part of the verdict).
    ok = all(v for k, v in within.items() if "started ahead" not in k)
    if "jupyterlab-slurm" in overhead:
        half = overhead["ours, local transport"] <= overhead["jupyterlab-slurm"] / 2
        print(
            "  target: ours (local) at most half the peer's overhead -> "
            f"{'PASS' if half else 'MISS'} ({overhead['ours, local transport']:.1f} vs "
            f"{overhead['jupyterlab-slurm']:.1f})"
        )
        ok = ok and half
    return ok


def main() -> int:
    return 0 if bench_submit(start_slurm()) else 1


if __name__ == "__main__":
    sys.exit(main())
