"""The in-process server the API tests run against: its configuration, and a small JSON
client over pytest-jupyter's ``jp_fetch``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from traitlets.config import Config

from .waiting import wait_until_async

SLOTS = 2
MAX_TIME = 60


def server_config(
    tmp_path: Path | None, clusters: list[dict[str, Any]], poll_interval: float = 0.3
) -> Config:
    """Our extension alone (terminals off), auth required, these clusters, and a fresh
    database under ``tmp_path`` (None: the default place, under the Jupyter data dir)."""
    database = {} if tmp_path is None else {"db_path": str(tmp_path / "pwlab" / "jobs.sqlite")}
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {
                    "parallelworks_lab": True,
                    "jupyter_server_terminals": False,
                },
                "allow_unauthenticated_access": False,
            },
            "ParallelWorksLabApp": {
                **database,
                "poll_interval": poll_interval,
                "clusters": clusters,
            },
        }
    )


class Api:
    """Small JSON wrapper over jp_fetch: returns (status, body) without raising."""

    def __init__(self, fetch: Callable[..., Awaitable[Any]]) -> None:
        self._fetch = fetch

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method == "POST":
            kwargs["body"] = ""
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await self._fetch("parallelworks-lab", path, params=params, **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    async def get(self, path: str, **params: Any) -> Any:
        status, body = await self.call("GET", path, params=params or None)
        assert status == 200, (status, body)
        return body

    async def submit(self, **body: Any) -> dict[str, Any]:
        body.setdefault("cluster", "local")
        status, job = await self.call("POST", "jobs", body)
        assert status == 201, (status, job)
        return job

    async def wait_for(
        self, job_id: str, check: Callable[[dict[str, Any]], Any], timeout: float = 30.0
    ) -> dict[str, Any]:
        """The job once ``check`` holds for it."""
        return await wait_until_async(
            lambda: self.get(f"jobs/{job_id}"), check, f"job {job_id}: condition", timeout=timeout
        )

    async def wait(self, job_id: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
        """The job once it is in one of ``states``."""
        return await wait_until_async(
            lambda: self.get(f"jobs/{job_id}"),
            lambda job: job["state"] in states,
            f"job {job_id} in {sorted(states)}",
            timeout=timeout,
        )

    async def read_all(self, job_id: str, stream: str = "stdout") -> str:
        chunks, offset = [], 0
        while True:
            chunk = await self.get(f"jobs/{job_id}/logs", stream=stream, offset=offset)
            chunks.append(chunk["data"])
            offset = chunk["offset"]
            if chunk["eof"]:
                return "".join(chunks)
            await asyncio.sleep(0.05)
