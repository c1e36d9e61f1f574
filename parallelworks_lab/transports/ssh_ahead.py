"""A command started ahead on the login node, waiting for its input (see ``transports.local``
for why: sbatch spends about half of its time starting, before it reads its script).

It runs on a session channel of its own, through the user's login shell as a one-off command
does, in its directory and with its umask::

    umask 077; cd DIR && exec /bin/sh -c '{ s=$(cat; echo .); if test -d DIR && test -x DIR;
        then printf %s "${s%.}"; else echo <marker> >&2; fi; } | NAME=value sbatch --parsable'

The command (sbatch) starts at once and waits on the pipe; the shell in front of it reads the
whole input from the channel, then checks that the directory is still there and can be entered
(as a command channel does, in the same exchange) and only then hands the input on. If it is
not, or if the channel closes first (the server stopped or died), the command gets no input at
all, which sbatch refuses ("Batch script is empty"): nothing is submitted. The marker (random,
per command) tells the missing directory apart from any output of the command.
"""

from __future__ import annotations

import secrets
import shlex
from typing import Optional

import asyncssh

from .base import StartedAs
from .ssh_shell import sh_command, umask_prefix


class MissingDirectory(Exception):
    """The directory was gone when the input came: the command was given none."""


def spare_command(started_as: StartedAs, marker: str) -> str:
    """The login-shell command line that starts ``started_as`` ahead (see above)."""
    # `cd DIR && ` as for a one-off session: the same in every login shell (DIR is absolute).
    assert started_as.cwd is not None and started_as.cwd.startswith("/")
    where = shlex.quote(started_as.cwd)
    feed = (
        f"{{ s=$(cat; echo .); if test -d {where} && test -x {where}; "
        f'then printf %s "${{s%.}}"; else echo {marker} >&2; fi; }}'
    )
    command = sh_command(list(started_as.argv), dict(started_as.env) or None)
    inner = f"{feed} | {command}"
    prefix = f"{umask_prefix(started_as.umask)}cd {where} && "
    return f"{prefix}exec /bin/sh -c {shlex.quote(inner)}"


class RemoteSpare:
    """One command started ahead on a connection."""

    def __init__(
        self,
        started_as: StartedAs,
        conn: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[bytes],
        marker: str,
    ) -> None:
        self.started_as = started_as
        self.conn = conn
        self._process = process
        self._marker = marker.encode()

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection, started_as: StartedAs) -> RemoteSpare:
        marker = f"PWLAB_NODIR_{secrets.token_hex(16)}"
        process = await conn.create_process(spare_command(started_as, marker), encoding=None)
        return cls(started_as, conn, process, marker)

    @property
    def waiting(self) -> bool:
        """Still running on a live connection (not failed at its start)."""
        return (
            self._process.exit_status is None
            and not self._process.is_closing()
            and not self.conn.is_closed()
        )

    async def finish(self, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        """Give it ``stdin``, then EOF; its exit status, stdout and stderr. MissingDirectory
        if its directory had gone (it got no input); asyncio.TimeoutError after ``timeout``."""
        self._process.stdin.write(stdin)
        self._process.stdin.write_eof()
        try:
            result = await self._process.wait(timeout=timeout)
        finally:
            self._process.close()
        stdout, stderr = _bytes(result.stdout), _bytes(result.stderr)
        if self._marker in stderr:
            raise MissingDirectory(self.started_as.cwd)
        if result.exit_status is None and self.conn.is_closed():
            raise asyncssh.ConnectionLost("the connection closed while the command ran")
        status = result.exit_status if result.exit_status is not None else 255
        return status, stdout, stderr

    def close(self) -> None:
        """Close its channel: its input ends empty, and it does nothing."""
        self._process.close()


def _bytes(output: Optional[bytes | str]) -> bytes:
    if isinstance(output, str):
        return output.encode()
    return output or b""
