"""Command channels on this machine: long-lived ``/bin/sh`` helpers that run one command after
another, so the Jupyter server does not fork itself for every scheduler command.

Starting a child from the server (a large Python process) through asyncio costs about 1 ms more
than from a small process: the fork (or vfork) of a big address space, a child-watcher thread,
and three pipe transports per command. A small shell forks far more cheaply, and its pipes are
set up once. The framing is the SSH command channels' (:mod:`.ssh_shell`): every word
:func:`shlex.quote`-d, the command in a subshell with its stdin from a here-document, and an end
marker of 128 random bits sent in two halves, so no output can forge it. The subshell ``exec``s
the program, so a command behaves exactly as when the server starts it itself.

The helper is started with the server's environment minus its secrets (as a directly run
command gets it), in a session of its own so that a timed-out command is killed together with
the shell that ran it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from typing import Optional

from ..environment import clean_environ
from .ssh_shell import (
    IDENTIFIER,
    READONLY_NAMES,
    FramedShell,
    ShellDied,
    ShellUnavailable,
    frame,
    quote_command,
    read_answer,
)

SHELL = "/bin/sh"
# How long a new helper may take to answer its first (no-op) frame.
PROBE_TIMEOUT = 5.0


def exec_command(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """``argv`` for the helper, run exactly as if started directly: ``exec`` looks the program
    up on PATH (the one in ``env`` too) and never runs a shell builtin of that name (``echo``,
    ``kill``, ``test`` ... behave as the programs do). ``env`` as exported prefix assignments,
    or through ``env`` for names sh cannot assign."""
    if env and any(not IDENTIFIER.fullmatch(name) or name in READONLY_NAMES for name in env):
        return f"exec {quote_command(argv, env)}"
    assignments = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    return " ".join([*assignments, "exec", quote_command(argv)])


class LocalShell(FramedShell):
    """One long-lived ``/bin/sh`` child; runs one command at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._broken = False

    @classmethod
    async def start(cls, timeout: float = PROBE_TIMEOUT) -> LocalShell:
        try:
            process = await asyncio.create_subprocess_exec(
                SHELL,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=clean_environ(),
                start_new_session=True,
            )
        except OSError as exc:
            raise ShellUnavailable(f"cannot start {SHELL}: {exc}") from exc
        shell = cls(process)
        try:
            status, _, _ = await shell._exchange(None, ":", timeout)
        except (ShellDied, asyncio.TimeoutError) as exc:
            raise ShellUnavailable(f"{SHELL} did not answer: {exc!r}") from exc
        if status != 0:
            shell.close()
            raise ShellUnavailable(f"{SHELL} answered its first command with {status}")
        return shell

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def usable(self) -> bool:
        process = self._process
        ended = process.returncode is not None or (process.stdout and process.stdout.at_eof())
        return not self._broken and not ended

    def command_line(self, argv: list[str], env: Optional[dict[str, str]]) -> str:
        return exec_command(argv, env)

    async def _send(
        self, command: str, stdin: Optional[bytes], marker: str, directory: Optional[str]
    ) -> tuple[int, bytes, bytes]:
        process = self._process
        assert process.stdin and process.stdout and process.stderr
        try:
            process.stdin.write(frame(command, stdin, marker, directory))
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ShellDied(f"{SHELL} had ended", started=False) from exc
        return await read_answer(process.stdout, process.stderr, marker)

    def close(self) -> None:
        """Kill the shell and anything it is running (its own process group)."""
        self._broken = True
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)

    async def wait_closed(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            await self._process.wait()


class LocalShellPool:
    """Up to ``size`` helpers. A command takes an idle one or starts one while fewer than
    ``size`` exist; when all are busy it gets ``None`` and the caller runs the command directly,
    so a slow command never holds up another. A dead helper is dropped and replaced on demand;
    if a helper cannot be started at all, the pool switches off."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: list[LocalShell] = []
        self._live: set[LocalShell] = set()
        self._starting = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.disabled = size == 0
        self.why_disabled = ""
        self.started = 0  # helpers started (tests and benchmarks count them)

    async def acquire(self) -> Optional[LocalShell]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A helper's pipes belong to the event loop that started it (tests run one loop
            # each): helpers of another loop are killed and replaced, never shared.
            self._kill_all()
            self._loop = loop
        while self._idle:
            shell = self._idle.pop()
            if shell.usable:
                return shell
            self._live.discard(shell)
        if self.disabled or len(self._live) + self._starting >= self._size:
            return None
        self._starting += 1
        self.started += 1
        try:
            shell = await LocalShell.start()
        except ShellUnavailable as exc:
            self.disabled, self.why_disabled = True, str(exc)
            return None
        finally:
            self._starting -= 1
        self._live.add(shell)
        return shell

    def release(self, shell: LocalShell) -> None:
        if shell.usable and not self.disabled:
            self._idle.append(shell)
        else:
            shell.close()
            self._live.discard(shell)

    def _kill_all(self) -> list[LocalShell]:
        shells = list(self._live)
        self._live.clear()
        self._idle.clear()
        for shell in shells:
            shell.close()
        return shells

    async def close(self) -> None:
        self.disabled = True
        for shell in self._kill_all():
            await shell.wait_closed()
