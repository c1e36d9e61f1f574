"""Run a child process from the event loop at the cost of starting it, nothing more.

asyncio's own subprocess support costs about 1 ms per command on top of the process itself: a
watcher thread per child (``ThreadedChildWatcher``, the default before Python 3.12) and three
pipe transports, each set up over several turns of the loop. Here the child is started by
``subprocess.Popen`` (which uses ``vfork``, so a large server process starts it as cheaply as a
small one), its pipes are read and written non-blocking straight from the loop's selector, and
its exit is seen through a pidfd (Linux 5.3+; elsewhere, by polling after its output ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import IO, Optional

READ_SIZE = 1 << 16
# Without a pidfd: how often to look whether a child whose output has ended has exited.
POLL_START, POLL_MAX = 0.0005, 0.05


@functools.lru_cache(maxsize=256)
def program(name: str, search_path: str) -> Optional[str]:
    """Where ``name`` is on ``search_path``, remembered: exec'ing a bare name tries each PATH
    entry in turn, and every miss is a failed execve in the new child (about 0.07 ms each here;
    a virtualenv's and pyenv's folders come before /usr/bin). A program that moves is looked
    up again when its remembered path fails."""
    return shutil.which(name, path=search_path)


class Child:
    """A started child process with piped stdout and stderr (and stdin, when it takes input),
    read and written from the event loop."""

    def __init__(self, proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self._streams = _Streams(loop, proc.stdout, proc.stderr)

    @classmethod
    def start(
        cls,
        argv: list[str],
        *,
        takes_input: bool,
        env: Mapping[str, str],
        cwd: Optional[str] = None,
        umask: int = -1,
    ) -> Child:
        """Start ``argv``. OSError when it cannot be (its ``filename`` says what was missing:
        the program, or ``cwd``). Call from the event loop's thread."""
        loop = asyncio.get_running_loop()
        search_path = env.get("PATH", os.defpath)
        executable = None if "/" in argv[0] else program(argv[0], search_path)
        while True:
            try:
                # Popen returns once the child has exec'd (vfork): it does not wait for it.
                proc = subprocess.Popen(
                    argv,
                    executable=executable,
                    stdin=subprocess.PIPE if takes_input else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    cwd=cwd,
                    umask=umask,
                )
                return cls(proc, loop)
            except FileNotFoundError as exc:
                if executable is None or exc.filename != executable:
                    raise
                # Moved or removed since it was looked up: look again (PATH order, as exec
                # would).
                program.cache_clear()
                executable = None

    @property
    def running(self) -> bool:
        """Not exited yet (one started ahead: still waiting for its input). What it printed
        meanwhile (a warning from sbatch's start) is part of what ``finish`` returns, as it
        would be had it been started with its input."""
        return self.proc.poll() is None

    async def finish(self, input: Optional[bytes], timeout: float) -> tuple[int, bytes, bytes]:
        """Give the child ``input`` (then EOF), and return its exit status, stdout and stderr.

        asyncio.TimeoutError after ``timeout`` s, when it has been killed. A child that is
        cancelled or timed out is killed and reaped, never left behind.
        """
        try:
            await asyncio.wait_for(self._communicate(input), timeout)
        except BaseException:
            await asyncio.shield(self.discard())
            raise
        self._streams.close()
        return self.proc.returncode, self._streams.data(0), self._streams.data(1)

    async def discard(self) -> None:
        """Kill the child (if it still runs) and reap it."""
        self._streams.close()
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        _kill(self.proc)
        await _reap(self.proc)

    async def _communicate(self, input: Optional[bytes]) -> None:
        if self.proc.stdin is not None:  # one started ahead has a stdin even for no input
            await _write_all(asyncio.get_running_loop(), self.proc.stdin, input or b"")
        await self._streams.ended
        await _reap(self.proc)


async def run_child(
    argv: list[str],
    *,
    input: Optional[bytes],
    env: Mapping[str, str],
    cwd: Optional[str] = None,
    umask: int = -1,
    timeout: float,
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` and return its exit status, stdout and stderr (see ``Child``)."""
    child = Child.start(argv, takes_input=input is not None, env=env, cwd=cwd, umask=umask)
    return await child.finish(input, timeout)


class _Streams:
    """stdout and stderr of a child, read from the loop's selector until both end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *files: IO[bytes]) -> None:
        self._loop = loop
        self._files = files
        self._chunks = [bytearray() for _ in files]
        self._open = set(range(len(files)))
        self.ended: asyncio.Future[None] = loop.create_future()
        for index, handle in enumerate(files):
            os.set_blocking(handle.fileno(), False)
            loop.add_reader(handle.fileno(), self._read, index)

    def _read(self, index: int) -> None:
        try:
            data = os.read(self._files[index].fileno(), READ_SIZE)
        except BlockingIOError:
            return
        if data:
            self._chunks[index] += data
            return
        self._loop.remove_reader(self._files[index].fileno())
        self._open.discard(index)
        if not self._open and not self.ended.done():
            self.ended.set_result(None)

    def data(self, index: int) -> bytes:
        return bytes(self._chunks[index])

    def close(self) -> None:
        for index in self._open:
            self._loop.remove_reader(self._files[index].fileno())
        self._open.clear()
        for handle in self._files:
            handle.close()


async def _write_all(loop: asyncio.AbstractEventLoop, stdin: IO[bytes], data: bytes) -> None:
    """All of ``data`` to the child's stdin, then EOF. A child that exits without reading it
    all is not an error (as with ``communicate``)."""
    fd = stdin.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(fd, writable.set_result, None)
                try:
                    await writable
                finally:
                    loop.remove_writer(fd)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


async def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the child to exit without blocking the loop, and collect its status."""
    if proc.poll() is not None:
        return
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here: poll, backing off
        delay = POLL_START
        while proc.poll() is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX)
        return
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, on_exit)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    proc.wait()  # it has exited: returns at once


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
