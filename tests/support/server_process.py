"""A real `jupyter server` process with the extension, for restart tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "restart-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_app_config(port: int, root_dir: Path, token: str = TOKEN) -> dict[str, Any]:
    """The ``ServerApp`` section of a test server run as a process: our extension, a token,
    this port on localhost only, no browser."""
    return {
        "jpserver_extensions": {"parallelworks_lab": True},
        "token": token,
        "ip": "127.0.0.1",
        "port": port,
        "port_retries": 0,
        "open_browser": False,
        "root_dir": str(root_dir),
    }


class Server:
    """A real `jupyter server` process with our extension, on a given database."""

    def __init__(
        self,
        tmp: Path,
        extra_config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.extra_config = extra_config or {}
        self.extra_env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/parallelworks-lab"

    def start(self) -> None:
        config = {
            "ServerApp": server_app_config(self.port, self.tmp) | {"allow_root": True},
            "ParallelWorksLabApp": {
                "db_path": str(self.tmp / "db" / "jobs.sqlite"),
                "poll_interval": 0.2,
                **self.extra_config,
            },
        }
        (self.tmp / "config.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "JUPYTER_CONFIG_DIR": str(self.tmp / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(self.tmp / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(self.tmp / "jupyter-runtime"),
            **self.extra_env,
        }
        log = (self.tmp / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--config={self.tmp / 'config.json'}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("clusters").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, (self.tmp / f"server-{self.port}.log").read_text()
            time.sleep(0.2)
        raise AssertionError("server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {TOKEN}"}
        return httpx.request(method, f"{self.url}/{path}", headers=headers, timeout=10, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def wait(self, job_id: str, states: set[str], timeout: float = 30) -> dict:
        """The job once it is in one of ``states``."""
        return wait_until(
            lambda: self.get(f"jobs/{job_id}").json(),
            lambda job: job["state"] in states,
            f"job {job_id} in {sorted(states)}",
            timeout=timeout,
            interval=0.1,
        )
