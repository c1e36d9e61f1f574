"""Run scheduler commands on this machine (JupyterLab runs on a login node)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..environment import clean_environ
from .base import CommandResult, Transport, TransportError
from .local_fs import local_is_dir
from .local_shell import LocalShellPool
from .ssh_shell import ShellDied


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
        default=2,
        ge=0,
        le=16,
        description="Long-lived /bin/sh helpers that run commands so the server does not fork "
        "itself for each one; 0 starts every command directly.",
    )


class LocalTransport(Transport):
    def __init__(self, settings: LocalTransportSettings, home: Optional[Path] = None) -> None:
        super().__init__()
        self.settings = settings
        self._home = home
        self.shells = LocalShellPool(settings.command_channels)

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
        shell = await self.shells.acquire()
        if shell is not None:
            stdin = None if input is None else input.encode()
            try:
                status, out, err = await shell.run(
                    argv, input=stdin, env=env, timeout=timeout, umask=umask, cwd=cwd
                )
            except asyncio.TimeoutError:
                raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
            except ShellDied as exc:
                # Killed from outside: run it directly, unless it may have run already (a
                # submit is then reconciled by its token).
                if exc.started and not idempotent:
                    raise TransportError(f"the shell running {argv[0]} ended: {exc}") from exc
            else:
                if status in (126, 127) and not runnable(argv[0], env):
                    # As when starting it directly fails: the cluster is unusable from here.
                    raise TransportError(f"cannot run {argv[0]}: {err.decode(errors='replace')}")
                return CommandResult(
                    status, out.decode(errors="replace"), err.decode(errors="replace")
                )
            finally:
                self.shells.release(shell)
        return await self._exec(argv, input=input, env=env, timeout=timeout, umask=umask, cwd=cwd)

    async def _exec(
        self,
        argv: list[str],
        *,
        input: Optional[str],
        env: Optional[dict[str, str]],
        timeout: float,
        umask: Optional[int],
        cwd: Optional[str],
    ) -> CommandResult:
        """Start ``argv`` as a child of the server itself."""
        full_env = clean_environ(env)
        if cwd is not None and not await self.is_dir(cwd):
            raise NotADirectoryError(cwd)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=full_env,
                umask=-1 if umask is None else umask,
                cwd=cwd,
            )
        except OSError as exc:  # e.g. sbatch not installed
            if cwd is not None and exc.filename == cwd:  # gone, or not enterable, since
                raise NotADirectoryError(cwd) from exc
            raise TransportError(f"cannot run {argv[0]}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        return CommandResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

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

    async def close(self) -> None:
        await self.shells.close()


def runnable(command: str, env: Optional[dict[str, str]]) -> bool:
    """Whether ``command`` names an executable file (on the command's PATH)."""
    return shutil.which(command, path=clean_environ(env).get("PATH")) is not None
