"""Command channels: long-lived remote shells that run one quoted command after another.

Opening an SSH session channel per command costs a round trip and makes sshd set up a session
and start the user's login shell (2-3 ms on loopback, a WAN round trip more elsewhere). A command
channel is one session channel running ``exec /bin/sh``: each command is written to that shell's
stdin as a *frame*, and its stdout and stderr end with a marker carrying the exit status.

A frame::

    (NAME='value' 'argv0' 'argv1' ...) <<'PWLAB_IN_<random>'
    <the command's stdin: plain text as is, anything else base64-encoded and piped through
     `base64 -d`>
    PWLAB_IN_<random>
    printf '%s%s %d\\n' <half 1> <half 2> "$?"; printf '%s%s\\n' <half 1> <half 2> >&2

- Every word and every value is :func:`shlex.quote`-d, as for a one-off session.
- The command runs in a subshell, so nothing it does (``cd``, ``exit``, a failed assignment)
  changes or ends the long-lived shell; its stdin is the here-document (or ``/dev/null``), never
  the shell's own input, so it cannot read the frames that follow.
- The here-document's delimiter is quoted, so the shell expands nothing in it; the delimiter is
  random and checked to be absent from the text (base64 text cannot contain its ``_`` at all).
- The end marker is 128 random bits, fresh per command, and the shell is sent it in two halves,
  so it never appears in anything we write: output (even an echo of our input) cannot forge it.

A command that must run in a directory (a submit, in its working directory) is framed as
``if test -d DIR && test -x DIR; then (cd DIR && ...) <<...; <end with "$?">; else <end with
"nodir">; fi``: the shell checks the directory with its builtins in the same exchange, instead
of a separate SFTP round trip before the command, and the status word ``nodir`` (which no exit
status can be) says the command was not run.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import shlex
from typing import Optional, Protocol

import asyncssh

# `exec`: the login shell (any flavour, after its rc files) is replaced by a POSIX shell that
# reads no startup files of its own.
SHELL_COMMAND = "exec /bin/sh"
# How long a new channel may take to answer its first (no-op) frame before we decide the login
# does not give us a shell (e.g. an authorized_keys forced command) and use one-off sessions.
PROBE_TIMEOUT = 5.0
READ_CHUNK = 1 << 16
# stdin sent as a raw here-document: printable ASCII lines ending in a newline (a here-document
# always ends with one). Anything else (no final newline, control or non-ASCII bytes, NUL) goes
# base64-encoded so no shell ever parses it.
PLAIN_TEXT = re.compile(rb"[\t\x20-\x7e\n]*\n")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Read-only in bash (/bin/sh on many login nodes): assigning one would fail, `env` does not.
READONLY_NAMES = frozenset({"BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"})
# The status a frame ends with when its directory is missing (the command did not run), and
# what read_answer returns for it (exit statuses are 0-255).
NO_DIRECTORY_WORD = "nodir"
NO_DIRECTORY = -1


class ShellUnavailable(Exception):
    """The login did not give us a working POSIX shell (e.g. a forced command)."""


class ShellDied(Exception):
    """The remote shell ended or broke the framing; ``started``: after the command was sent."""

    def __init__(self, message: str, *, started: bool = True) -> None:
        super().__init__(message)
        self.started = started


def quote_command(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """One remote command line: ``env K=V ... argv`` with every word quoted."""
    words = []
    if env:
        words.append("env")
        words.extend(f"{name}={value}" for name, value in env.items())
    words.extend(argv)
    return " ".join(shlex.quote(word) for word in words)


def sh_command(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """``argv`` for a POSIX sh, with ``env`` as prefix assignments.

    ``NAME='value' cmd`` saves starting ``env`` (about 0.7 ms per command); names that sh
    cannot assign go through ``env`` as in :func:`quote_command`.
    """
    if not env:
        return quote_command(argv)
    if any(not IDENTIFIER.fullmatch(name) or name in READONLY_NAMES for name in env):
        return quote_command(argv, env)
    assignments = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    return " ".join([*assignments, quote_command(argv)])


def umask_prefix(umask: Optional[int]) -> str:
    """``umask NNN; `` for a remote command line (digits only: nothing to quote), or ""."""
    if umask is None:
        return ""
    if not 0 <= umask <= 0o777:
        raise ValueError(f"not a umask: {umask!r}")
    return f"umask {umask:03o}; "


def frame(
    command: str, stdin: Optional[bytes], marker: str, directory: Optional[str] = None
) -> bytes:
    """What the long-lived shell is sent to run ``command`` (already quoted) once; in
    ``directory``, if given, or not at all when that is not a directory it can enter."""
    half = len(marker) // 2
    halves = f"{marker[:half]} {marker[half:]}"
    status = f"""printf '%s%s %s\\n' {halves} "$?"; """
    err_end = f"printf '%s%s\\n' {halves} >&2\n"
    cd = ""
    if directory is not None:
        where = shlex.quote(directory)
        cd = f"cd -- {where} && "
        opening = f"if test -d {where} && test -x {where}; then "
        status += f"else printf '%s%s {NO_DIRECTORY_WORD}\\n' {halves}; fi; "
    else:
        opening = ""
    if stdin is None:
        return f"{opening}({cd}{command}) </dev/null\n{status}{err_end}".encode()
    delimiter = f"PWLAB_IN_{secrets.token_hex(16)}"
    if PLAIN_TEXT.fullmatch(stdin) and delimiter.encode() not in stdin:
        head, body = f"{opening}({cd}{command})", stdin
    else:
        head, body = f"{opening}({cd}base64 -d | {command})", base64.encodebytes(stdin)
    tail = f"{delimiter}\n{status}{err_end}"
    return b"".join((f"{head} <<'{delimiter}'\n".encode(), body, tail.encode()))


class ByteReader(Protocol):
    """A stream of a shell's output: asyncssh's channel readers and asyncio's pipe readers."""

    async def read(self, n: int = -1) -> bytes: ...


async def read_through(reader: ByteReader, marker: bytes) -> tuple[bytes, bytes]:
    """Everything before ``marker``, and the rest of the marker's line.

    Reads in chunks and searches only new data (asyncssh's ``readuntil`` gives up on output
    larger than the channel's receive window, e.g. a long ``squeue``).
    """
    buf = bytearray()
    start = 0
    while True:
        at = buf.find(marker, start)
        if at >= 0:
            eol = buf.find(b"\n", at + len(marker))
            if eol >= 0:
                return bytes(buf[:at]), bytes(buf[at + len(marker) : eol])
        else:
            start = max(0, len(buf) - len(marker) + 1)
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            raise ShellDied("the remote shell closed its output")
        buf += chunk


async def read_answer(
    stdout: ByteReader, stderr: ByteReader, marker: str
) -> tuple[int, bytes, bytes]:
    """The exit status, stdout and stderr a frame sent with ``marker`` answered
    (:data:`NO_DIRECTORY` for a frame whose directory was missing)."""
    token = marker.encode()
    # Both streams at once: a command filling one pipe must not stall on the other.
    (out, status), (err, rest) = await asyncio.gather(
        read_through(stdout, token), read_through(stderr, token)
    )
    if status == f" {NO_DIRECTORY_WORD}".encode() and not rest:
        return NO_DIRECTORY, out, err
    if not re.fullmatch(rb" \d{1,3}", status) or rest:
        raise ShellDied(f"unexpected end of frame {status!r} {rest!r}")
    return int(status), out, err


class ShellChannel:
    """One long-lived ``/bin/sh`` on its own session channel; runs one command at a time."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess[bytes]
    ) -> None:
        self._conn = conn
        self._process = process
        self._broken = False

    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection, timeout: float) -> ShellChannel:
        process = await conn.create_process(SHELL_COMMAND, encoding=None)
        channel = cls(conn, process)
        try:
            # A no-op frame: proves a POSIX shell answers, and drains whatever the login printed.
            status, _, _ = await channel._exchange(None, ":", timeout)
        except (ShellDied, asyncio.TimeoutError) as exc:
            raise ShellUnavailable(f"{SHELL_COMMAND!r} did not answer: {exc!r}") from exc
        if status != 0:
            channel.close()
            raise ShellUnavailable(f"{SHELL_COMMAND!r} answered its first command with {status}")
        return channel

    @property
    def usable(self) -> bool:
        return not self._broken and not self._process.is_closing()

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[bytes],
        env: Optional[dict[str, str]],
        timeout: float,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` (in ``cwd``: NotADirectoryError, and nothing run, if it is not a
        directory this user can enter there)."""
        command = sh_command(argv, env)
        if umask is not None:
            # A group: in `base64 -d | { ...; }` the umask and the command share the pipe's end.
            command = f"{{ {umask_prefix(umask)}{command}; }}"
        answer = await self._exchange(input, command, timeout, cwd)
        if answer[0] == NO_DIRECTORY:
            raise NotADirectoryError(cwd)
        return answer

    async def _exchange(
        self, stdin: Optional[bytes], command: str, timeout: float, cwd: Optional[str] = None
    ) -> tuple[int, bytes, bytes]:
        marker = secrets.token_hex(16)
        try:
            return await asyncio.wait_for(self._send(command, stdin, marker, cwd), timeout)
        except BaseException:
            # Timed out, cancelled or broken mid-frame: what the shell prints next is unknown,
            # so it is never used again (closing it ends it and whatever it runs).
            self.close()
            raise

    async def _send(
        self, command: str, stdin: Optional[bytes], marker: str, directory: Optional[str]
    ) -> tuple[int, bytes, bytes]:
        try:
            self._process.stdin.write(frame(command, stdin, marker, directory))
        except BrokenPipeError as exc:
            # Nothing was sent: the caller runs it on a session of its own (on a connection
            # that is gone, opening that session fails and the caller reconnects).
            raise ShellDied("the remote shell had ended", started=False) from exc
        await self._process.stdin.drain()
        return await read_answer(self._process.stdout, self._process.stderr, marker)

    def close(self) -> None:
        self._broken = True
        if not self._process.is_closing():
            self._process.close()


class ShellPool:
    """Up to ``size`` command channels on one connection.

    A command takes an idle channel, or starts one while fewer than ``size`` exist; when all are
    busy it gets ``None`` and the caller opens a one-off session instead, so a slow command never
    holds up another. After a login that gives no shell, the pool stays off for the connection.
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, size: int) -> None:
        self.conn = conn
        self._size = size
        self._idle: list[ShellChannel] = []
        self._count = 0  # channels running a command, idle or starting
        self.disabled = size == 0
        self.opened = 0  # session channels opened for shells (tests and benchmarks count them)
        self.why_disabled = ""

    async def acquire(self) -> Optional[ShellChannel]:
        while self._idle:
            channel = self._idle.pop()
            if channel.usable:
                return channel
            self._count -= 1
        if self.disabled or self._count >= self._size:
            return None
        self._count += 1
        self.opened += 1
        try:
            return await ShellChannel.open(self.conn, PROBE_TIMEOUT)
        except ShellUnavailable as exc:
            self._count -= 1
            self.disabled, self.why_disabled = True, str(exc)
            return None
        except asyncssh.ChannelOpenError:
            # e.g. sshd's MaxSessions reached: a one-off session now, a shell another time.
            self._count -= 1
            return None
        except BaseException:
            self._count -= 1
            raise

    def release(self, channel: ShellChannel) -> None:
        if channel.usable and not self.disabled:
            self._idle.append(channel)
        else:
            channel.close()
            self._count -= 1

    def close(self) -> None:
        self.disabled = True
        for channel in self._idle:
            channel.close()
        self._count -= len(self._idle)
        self._idle.clear()
