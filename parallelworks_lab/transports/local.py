"""Run scheduler commands on this machine (JupyterLab runs on a login node)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..environment import clean_environ
from .base import CommandResult, Transport, TransportError
from .local_fs import local_is_dir
from .spawn import run_child


def read_range(path: str, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of a file from ``offset``; b"" at or past its end.

    Seeking past the largest file size the filesystem supports fails (EINVAL), so an offset past
    the end is answered without seeking.
    """
    with open(path, "rb") as handle:
        if offset >= os.fstat(handle.fileno()).st_size:
            return b""
        handle.seek(offset)
        return handle.read(limit)


class LocalTransportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["local"] = "local"
    command_channels: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Not used any more (accepted so that configurations written for the "
        "earlier long-lived /bin/sh helpers still load): every command is started directly, "
        "which now costs less than handing it to a helper.",
    )


class LocalTransport(Transport):
    """Scheduler commands as children of the server (``spawn.run_child``: vfork, no asyncio
    subprocess machinery), with the server's environment minus its secrets."""

    def __init__(self, settings: LocalTransportSettings, home: Optional[Path] = None) -> None:
        super().__init__()
        self.settings = settings
        self._home = home

    def set_home(self, home: Path) -> None:
        self._home = home

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        timeout: float = 60.0,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
    ) -> CommandResult:
        self.commands_run += 1
        # The server's environment as it is now, minus its secrets (about 0.07 ms).
        full_env = clean_environ(env)
        if cwd is not None and not await self.is_dir(cwd):
            raise NotADirectoryError(cwd)
        try:
            status, out, err = await run_child(
                argv,
                input=input.encode() if input is not None else None,
                env=full_env,
                cwd=cwd,
                umask=-1 if umask is None else umask,
                timeout=timeout,
            )
        except asyncio.TimeoutError:  # before OSError: TimeoutError is one
            raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        except OSError as exc:  # e.g. sbatch not installed
            if cwd is not None and exc.filename == cwd:  # gone, or not enterable, since
                raise NotADirectoryError(cwd) from exc
            raise TransportError(f"cannot run {argv[0]}: {exc}") from exc
        return CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        return await asyncio.to_thread(read_range, path, offset, limit)

    async def is_dir(self, path: str) -> bool:
        # On a local disk the stat is cheaper than a thread hand-off; a network filesystem
        # can block, and must not block the event loop (see local_fs).
        answer = local_is_dir(path)
        if answer is not None:
            return answer
        return await asyncio.to_thread(os.path.isdir, path)

    async def home(self) -> str:
        return str(self._home or Path.home())
