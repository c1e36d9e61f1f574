"""Run scheduler commands on a remote login node over one persistent SSH connection (asyncssh).

Every argument is quoted with :func:`shlex.quote` before it reaches the remote shell; files are
read over SFTP, never through a shell. Host keys are checked against known_hosts unless a site
explicitly turns that off. Commands run on long-lived remote shells of that connection
(:mod:`.ssh_shell`), or on a session of their own when none is free or the login gives no shell.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from typing import Any, Literal, Optional

import asyncssh
from pydantic import BaseModel, ConfigDict, Field

from .base import CommandResult, StartedAs, Transport, TransportError
from .spare_slot import SpareSlot
from .ssh_ahead import MissingDirectory, RemoteSpare
from .ssh_shell import ShellDied, ShellPool, quote_command, umask_prefix

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
log = logging.getLogger(__name__)


class JumpHostSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: Optional[str] = None
    key_file: Optional[str] = None


class SSHTransportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["ssh"]
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: Optional[str] = None
    key_file: Optional[str] = Field(
        default=None, description="Private key; without one the SSH agent / default keys are used."
    )
    known_hosts: Optional[str] = Field(
        default=None, description="known_hosts file (default: ~/.ssh/known_hosts)."
    )
    check_host_key: bool = Field(
        default=True, description="Set false only for throwaway test hosts: disables MITM checks."
    )
    jump_host: Optional[JumpHostSettings] = None
    keepalive_interval: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=15.0, gt=0)
    command_channels: int = Field(
        default=4,
        ge=0,
        le=16,
        description="Long-lived remote shells per connection that run commands without opening "
        "an SSH session each; 0 opens a session per command.",
    )
    start_ahead_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a submit command started ahead of the next submit waits for it "
        "on the login node (then its channel is closed, and it does nothing); 0: never.",
    )


class SSHTransport(Transport):
    def __init__(self, settings: SSHTransportSettings) -> None:
        super().__init__()
        self.settings = settings
        self._conn: Optional[asyncssh.SSHClientConnection] = None
        self._jump: Optional[asyncssh.SSHClientConnection] = None
        self._sftp: Optional[asyncssh.SFTPClient] = None
        self._lock = asyncio.Lock()
        self._home: Optional[str] = None
        self._shells: Optional[ShellPool] = None
        self._one_off_sessions = 0
        self._shells_opened_before = 0
        self.connects = 0
        self._environment: Optional[set[str]] = None
        self.spares: SpareSlot[RemoteSpare] = SpareSlot(RemoteSpare.close)
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def starts_ahead(self) -> bool:
        return self.settings.start_ahead_seconds > 0

    async def environment_names(self, extra: dict[str, str]) -> set[str]:
        # The login's environment, asked once (a new login shell per session sees the same).
        if self._environment is None:
            self._environment = await super().environment_names({})
        return {*self._environment, *extra}

    @property
    def channels_opened(self) -> int:
        """SSH session channels opened to run commands (shells and one-off sessions)."""
        current = self._shells.opened if self._shells is not None else 0
        return self._one_off_sessions + self._shells_opened_before + current

    def _options(self, host: str, port: int, username: Optional[str], key: Optional[str]) -> Any:
        known_hosts: Optional[str] = None  # None: asyncssh skips the check (explicit opt-out)
        if self.settings.check_host_key:
            known_hosts = os.path.expanduser(self.settings.known_hosts or "~/.ssh/known_hosts")
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "known_hosts": known_hosts,
            "keepalive_interval": self.settings.keepalive_interval,
            "connect_timeout": self.settings.connect_timeout,
        }
        if username:
            options["username"] = username
        if key:
            options["client_keys"] = [os.path.expanduser(key)]
        return options

    async def _connect(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._sftp = None
            s = self.settings
            last: Exception | None = None
            for delay in (0.0, *RECONNECT_DELAYS):
                if delay:
                    await asyncio.sleep(delay)
                try:
                    tunnel = None
                    if s.jump_host is not None:
                        j = s.jump_host
                        self._jump = await asyncssh.connect(
                            **self._options(j.host, j.port, j.username, j.key_file)
                        )
                        tunnel = self._jump
                    options = self._options(s.host, s.port, s.username, s.key_file)
                    if tunnel is not None:
                        options["tunnel"] = tunnel
                    self._conn = await asyncssh.connect(**options)
                    self.connects += 1
                    return self._conn
                except asyncssh.HostKeyNotVerifiable as exc:
                    # Never retry around a host key problem: it needs a human.
                    raise TransportError(
                        f"host key of {s.host}:{s.port} is not in known_hosts "
                        f"({s.known_hosts or '~/.ssh/known_hosts'}): {exc.reason}"
                    ) from exc
                except asyncssh.PermissionDenied as exc:
                    raise TransportError(
                        f"SSH login to {s.username or ''}@{s.host}:{s.port} was refused: "
                        f"{exc.reason}"
                    ) from exc
                except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                    last = exc
            raise TransportError(f"cannot connect to {s.host}:{s.port}: {last}")

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
        stdin = None if input is None else input.encode()
        ahead = None
        if start_ahead and self.starts_ahead and stdin is not None and b"\0" not in stdin:
            if cwd is not None and cwd.startswith("/"):
                ahead = StartedAs(tuple(argv), tuple((env or {}).items()), cwd, umask)
        if ahead is not None:
            try:
                return await self._run_ahead(ahead, stdin or b"", timeout, idempotent)
            finally:
                self._start_spare_soon(ahead)
        return await self._run(argv, stdin, env, timeout, idempotent, umask, cwd)

    async def _run(
        self,
        argv: list[str],
        stdin: Optional[bytes],
        env: Optional[dict[str, str]],
        timeout: float,
        idempotent: bool,
        umask: Optional[int],
        cwd: Optional[str],
    ) -> CommandResult:
        for attempt in (1, 2):
            conn = await self._connect()
            try:
                status, stdout, stderr = await self._run_on(
                    conn, argv, stdin, env, timeout, umask, cwd
                )
            except asyncio.TimeoutError as exc:  # asyncssh.TimeoutError is one too
                raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
            except (
                ShellDied,
                asyncssh.ConnectionLost,
                asyncssh.DisconnectError,
                ConnectionError,
            ) as exc:
                # ConnectionError: BrokenPipeError, and ConnectionResetError read off a socket
                # the server reset. The command may have run before its shell or connection
                # went: it is run again only if that is safe (a submit is reconciled by its
                # token instead), and only when the connection itself was lost.
                if isinstance(exc, ShellDied) and not conn.is_closed():
                    raise TransportError(f"remote shell running {argv[0]} ended: {exc}") from exc
                self._forget(conn)
                if attempt == 2 or not idempotent:
                    raise TransportError(f"connection to {self.settings.host} lost: {exc}") from exc
                continue
            except asyncssh.ChannelOpenError as exc:
                # Nothing was sent: always safe to try again on a new connection.
                self._forget(conn)
                if attempt == 2:
                    raise TransportError(f"cannot open a session: {exc}") from exc
                continue
            return CommandResult(status, _text(stdout), _text(stderr))
        raise TransportError("unreachable")  # pragma: no cover

    async def _run_ahead(
        self, ahead: StartedAs, stdin: bytes, timeout: float, idempotent: bool
    ) -> CommandResult:
        """A command that may have been started ahead: given to the waiting one if it matches,
        else run as any other."""
        spare = self.spares.take(ahead, lambda s: s.waiting and s.conn is self._conn)
        if spare is None:
            env = dict(ahead.env) or None
            return await self._run(
                list(ahead.argv), stdin, env, timeout, idempotent, ahead.umask, ahead.cwd
            )
        try:
            status, stdout, stderr = await spare.finish(stdin, timeout)
        except MissingDirectory:
            raise NotADirectoryError(ahead.cwd) from None
        except asyncio.TimeoutError as exc:
            raise TransportError(f"{ahead.argv[0]} did not answer within {timeout:.0f} s") from exc
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError) as exc:
            self._forget(spare.conn)
            raise TransportError(f"connection to {self.settings.host} lost: {exc}") from exc
        return CommandResult(status, _text(stdout), _text(stderr))

    def _start_spare_soon(self, ahead: StartedAs) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self._start_spare(ahead))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_spare(self, ahead: StartedAs) -> None:
        self.spares.discard()
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        if self._shells is None or self._shells.disabled:
            return  # the login gives no shell (a forced command): nothing to start it with
        try:
            spare = await RemoteSpare.start(conn, ahead)
        except (asyncssh.Error, OSError):
            return  # the next such command runs as any other
        if self._closed:
            spare.close()
            return
        self.spares.put(ahead, spare, self.settings.start_ahead_seconds)  # replaces any other

    def _forget(self, conn: asyncssh.SSHClientConnection) -> None:
        """Reconnect on next use, unless another command already replaced ``conn``."""
        if self._conn is conn:
            self._conn = None

    def _shell_pool(self, conn: asyncssh.SSHClientConnection) -> ShellPool:
        """The command channels of ``conn`` (a new connection gets new ones)."""
        if self._shells is not None and self._shells.conn is conn:
            return self._shells
        if conn is not self._conn:
            return ShellPool(conn, 0)  # already replaced: no shells on it, it is going away
        if self._shells is not None:
            self._shells.close()
            self._shells_opened_before += self._shells.opened
        self._shells = ShellPool(conn, self.settings.command_channels)
        return self._shells

    async def _run_on(
        self,
        conn: asyncssh.SSHClientConnection,
        argv: list[str],
        stdin: Optional[bytes],
        env: Optional[dict[str, str]],
        timeout: float,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
    ) -> tuple[int, bytes, bytes]:
        pool = self._shell_pool(conn)
        was_disabled = pool.disabled
        channel = await pool.acquire()
        if pool.disabled and not was_disabled:
            log.info(
                "%s: no remote shell, one SSH session per command: %s",
                self.settings.host,
                pool.why_disabled,
            )
        if channel is not None:
            try:
                return await channel.run(
                    argv, input=stdin, env=env, timeout=timeout, umask=umask, cwd=cwd
                )
            except ShellDied as exc:
                if exc.started:
                    raise
                # The shell had ended while idle and nothing was sent: run it on its own session.
            finally:
                pool.release(channel)
        if cwd is not None and not await self.is_dir(cwd):
            raise NotADirectoryError(cwd)
        return await self._run_one_off(conn, argv, stdin, env, timeout, umask, cwd)

    async def _run_one_off(
        self,
        conn: asyncssh.SSHClientConnection,
        argv: list[str],
        stdin: Optional[bytes],
        env: Optional[dict[str, str]],
        timeout: float,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
    ) -> tuple[int, bytes, bytes]:
        """The command on a session channel of its own, through the user's login shell."""
        self._one_off_sessions += 1
        # `umask NNN; cmd` and `cd '/dir' && cmd` mean the same in sh, bash, zsh, csh and fish
        # login shells (the directory was checked just before; an absolute path never starts
        # with the "-" of an option).
        command = umask_prefix(umask) + quote_command(argv, env)
        if cwd is not None and cwd.startswith("/"):
            command = f"cd {shlex.quote(cwd)} && {command}"
        # asyncssh sends no EOF for empty or no input: a command reading stdin would hang.
        options: dict[str, Any] = (
            {"input": stdin} if stdin else {"stdin": asyncio.subprocess.DEVNULL}
        )
        result = await conn.run(command, timeout=timeout, check=False, encoding=None, **options)
        if result.exit_status is None and conn.is_closed():
            # No exit status because the connection went, not because the command failed.
            raise asyncssh.ConnectionLost("the connection closed while the command ran")
        status = result.exit_status if result.exit_status is not None else 255
        return status, _bytes(result.stdout), _bytes(result.stderr)

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        conn = await self._connect()
        if self._sftp is None:
            self._sftp = await conn.start_sftp_client()
        return self._sftp

    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        try:
            sftp = await self._sftp_client()
            async with sftp.open(path, "rb") as handle:
                await handle.seek(offset)
                data: bytes = await handle.read(limit)
                return data
        except asyncssh.SFTPNoSuchFile as exc:
            raise FileNotFoundError(path) from exc
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
            self._conn = None
            raise TransportError(f"connection to {self.settings.host} lost: {exc}") from exc

    async def is_dir(self, path: str) -> bool:
        sftp = await self._sftp_client()
        try:
            return bool(await sftp.isdir(path))
        except asyncssh.SFTPError:
            return False

    async def home(self) -> str:
        if self._home is None:
            sftp = await self._sftp_client()
            self._home = str(await sftp.realpath("."))
        return self._home

    async def close(self) -> None:
        self._closed = True
        self.spares.discard()
        for task in list(self._starting):
            task.cancel()
        if self._shells is not None:
            self._shells.close()
        for conn in (self._conn, self._jump):
            if conn is not None:
                conn.close()
                await conn.wait_closed()
        self._conn = self._jump = None
        self._sftp = None


def _text(output: bytes) -> str:
    # Scheduler output is text; a stray invalid byte (a job name, a path) must not fail the call.
    return output.decode("utf-8", "replace")


def _bytes(output: Optional[bytes | str]) -> bytes:
    # encoding=None gives bytes; asyncssh's types allow str.
    if isinstance(output, str):
        return output.encode()
    return output or b""
