"""Helpers for the notebook-side tests: one real `jupyter server` and real kernels it starts."""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from jupyter_client import BlockingKernelClient

from .server_process import TOKEN, Server
from .waiting import wait_until

SLOTS = 2


def start_live_server(tmp: Path) -> Server:
    """A real server with a `local` cluster of 2 slots whose `python` is this interpreter."""
    server = Server(
        tmp,
        extra_config={
            "clusters": [
                {
                    "id": "local",
                    "kind": "local",
                    "slots": SLOTS,
                    "max_time_minutes": 60,
                    "kill_grace_seconds": 1,
                    "python": sys.executable,
                }
            ]
        },
    )
    server.start()
    return server


def server_root(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/"


class Kernel:
    """A kernel started by the server through its REST API, driven with jupyter_client."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server_root(server), headers={"Authorization": f"token {TOKEN}"}, timeout=30
        )
        response = self.http.post("api/kernels", json={"name": "python3"})
        response.raise_for_status()
        self.id = response.json()["id"]
        connection_file = server.tmp / "jupyter-runtime" / f"kernel-{self.id}.json"
        wait_until(connection_file.exists, what="the kernel's connection file", timeout=30)
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(connection_file))
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Run code; return {"status", "stdout", "stderr", "data" (rich outputs), "error"}."""
        msg_id = self.client.execute(code)
        return self.collect(msg_id, timeout)

    def collect(self, msg_id: str, timeout: float = 60, until: str | None = None) -> dict[str, Any]:
        """Gather outputs of ``msg_id`` until the kernel is idle (or ``until`` is printed)."""
        result: dict[str, Any] = {"stdout": "", "stderr": "", "data": [], "error": None}
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; so far: {result}"
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                result[content["name"]] += content["text"]
                if until is not None and until in result["stdout"]:
                    result["status"] = "running"
                    return result
            elif kind in ("execute_result", "display_data"):
                result["data"].append(content["data"])
            elif kind == "error":
                result["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                result["status"] = "idle"
                return result

    def interrupt(self) -> None:
        self.http.post(f"api/kernels/{self.id}/interrupt").raise_for_status()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.http.delete(f"api/kernels/{self.id}")
        self.http.close()
