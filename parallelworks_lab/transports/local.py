"""Run scheduler commands on this machine (JupyterLab runs on a login node).

A command that is likely to come again and does nothing before its input ends (a submit: sbatch
with its options in the script, see ``slurm_cli``) is started ahead: after each such run, the
next one is started and left waiting for its input, so the next call only hands it the script.
sbatch spends about half of its time (loading its libraries, plugins and slurm.conf) before it
reads its script; that part is then off the researcher's clock. The spare is killed when it has
waited ``start_ahead_seconds`` (a changed slurm.conf is seen within that time), when another
command is started ahead in its place, and when the server stops; if the server dies instead,
the spare reads an empty script, which sbatch refuses ("Batch script is empty"): nothing is
submitted.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..environment import clean_environ
from .base import CommandResult, StartedAs, Transport, TransportError
from .local_fs import local_is_dir
from .spare_slot import SpareSlot
from .spawn import Child


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


async def is_local_dir(path: str) -> bool:
    # On a local disk the stat is cheaper than a thread hand-off; a network filesystem can
    # block, and must not block the event loop (see local_fs).
    answer = local_is_dir(path)
    if answer is not None:
        return answer
    return await asyncio.to_thread(os.path.isdir, path)


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
    start_ahead_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a submit command started ahead of the next submit waits for it "
        "(it is killed after that, having done nothing); 0: never start one ahead.",
    )


class LocalTransport(Transport):
    """Scheduler commands as children of the server (``spawn.run_child``: vfork, no asyncio
    subprocess machinery), with the server's environment minus its secrets."""

    def __init__(self, settings: LocalTransportSettings, home: Optional[Path] = None) -> None:
        super().__init__()
        self.settings = settings
        self._home = home
        self.spares: SpareSlot[Child] = SpareSlot(self._kill_spare)
        self._discarding: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def starts_ahead(self) -> bool:
        return self.settings.start_ahead_seconds > 0

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
        start_ahead: bool = False,
    ) -> CommandResult:
        self.commands_run += 1
        # The server's environment as it is now, minus its secrets (about 0.07 ms).
        full_env = clean_environ(env)
        if cwd is not None and not await is_local_dir(cwd):
            raise NotADirectoryError(cwd)
        ahead = None
        if start_ahead and self.starts_ahead:
            ahead = StartedAs(tuple(argv), tuple(full_env.items()), cwd, umask)
        child = None if ahead is None else self.spares.take(ahead, lambda c: c.running)
        try:
            if child is None:
                child = Child.start(
                    argv,
                    takes_input=input is not None,
                    env=full_env,
                    cwd=cwd,
                    umask=-1 if umask is None else umask,
                )
            status, out, err = await child.finish(
                input.encode() if input is not None else None, timeout
            )
        except asyncio.TimeoutError:  # before OSError: TimeoutError is one
            raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        except OSError as exc:  # e.g. sbatch not installed
            if cwd is not None and exc.filename == cwd:  # gone, or not enterable, since
                raise NotADirectoryError(cwd) from exc
            raise TransportError(f"cannot run {argv[0]}: {exc}") from exc
        finally:
            if ahead is not None:
                # From the loop's next turn, not here: the submit's answer does not wait.
                asyncio.get_running_loop().call_soon(self._start_spare, ahead, full_env)
        return CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    def _start_spare(self, ahead: StartedAs, env: dict[str, str]) -> None:
        self.spares.discard()
        if self._closed:
            return
        try:
            child = Child.start(
                list(ahead.argv),
                takes_input=True,
                env=env,
                cwd=ahead.cwd,
                umask=-1 if ahead.umask is None else ahead.umask,
            )
        except OSError:
            return  # the next call starts it itself, and reports why it cannot
        self.spares.put(ahead, child, self.settings.start_ahead_seconds)

    def _kill_spare(self, child: Child) -> None:
        task = asyncio.ensure_future(child.discard())
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def close(self) -> None:
        self._closed = True  # a run that ends after this starts nothing ahead
        self.spares.discard()
        if self._discarding:
            await asyncio.gather(*self._discarding, return_exceptions=True)

    async def environment_names(self, extra: dict[str, str]) -> set[str]:
        return set(clean_environ(extra))

    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        return await asyncio.to_thread(read_range, path, offset, limit)

    async def is_dir(self, path: str) -> bool:
        return await is_local_dir(path)

    async def home(self) -> str:
        return str(self._home or Path.home())
