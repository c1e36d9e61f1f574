"""Run scheduler commands on a remote login node over one persistent SSH connection (asyncssh).

Every argument is quoted with :func:`shlex.quote` before it reaches the remote shell; files are
read over SFTP, never through a shell. Host keys are checked against known_hosts unless a site
explicitly turns that off.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from typing import Any, Literal, Optional

import asyncssh
from pydantic import BaseModel, ConfigDict, Field

from .base import CommandResult, Transport, TransportError

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


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


def quote_command(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """One remote command line: ``env K=V ... argv`` with every word quoted."""
    words = []
    if env:
        words.append("env")
        words.extend(f"{name}={value}" for name, value in env.items())
    words.extend(argv)
    return " ".join(shlex.quote(word) for word in words)


class SSHTransport(Transport):
    def __init__(self, settings: SSHTransportSettings) -> None:
        super().__init__()
        self.settings = settings
        self._conn: Optional[asyncssh.SSHClientConnection] = None
        self._jump: Optional[asyncssh.SSHClientConnection] = None
        self._sftp: Optional[asyncssh.SFTPClient] = None
        self._lock = asyncio.Lock()
        self._home: Optional[str] = None
        self.connects = 0

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
    ) -> CommandResult:
        self.commands_run += 1
        command = quote_command(argv, env)
        for attempt in (1, 2):
            conn = await self._connect()
            try:
                result = await conn.run(command, input=input, timeout=timeout, check=False)
            except asyncssh.ProcessError as exc:  # pragma: no cover - check=False
                return CommandResult(exc.exit_status or 1, str(exc.stdout), str(exc.stderr))
            except asyncssh.TimeoutError as exc:
                raise TransportError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as exc:
                self._conn = None
                if attempt == 2:
                    raise TransportError(f"connection to {self.settings.host} lost: {exc}") from exc
                continue
            except asyncssh.ChannelOpenError as exc:
                self._conn = None
                if attempt == 2:
                    raise TransportError(f"cannot open a session: {exc}") from exc
                continue
            status = result.exit_status if result.exit_status is not None else 255
            return CommandResult(status, str(result.stdout or ""), str(result.stderr or ""))
        raise TransportError("unreachable")  # pragma: no cover

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
        for conn in (self._conn, self._jump):
            if conn is not None:
                conn.close()
                await conn.wait_closed()
        self._conn = self._jump = None
        self._sftp = None
