"""What every scheduler driven by its command-line tools shares (Slurm, Grid Engine, ...).

A subclass adds the scheduler's own commands and parsing; running them over a transport, mapping
an unanswering scheduler to "cluster unreachable", resolving working directories and reading
logs are here, so a new command-line scheduler is one small module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Optional

from pydantic import Field

from ..errors import ClusterUnreachable, Conflict, InvalidRequest, RateLimited
from ..identity import unix_user
from ..transports import (
    CommandResult,
    LocalTransport,
    LocalTransportSettings,
    SSHTransportSettings,
    Transport,
    TransportError,
    TransportSettings,
    make_transport,
)
from .base import Backend, BackendSettings


class CommandLineSettings(BackendSettings):
    transport: TransportSettings = Field(default_factory=LocalTransportSettings)
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment for every scheduler command (e.g. SLURM_CONF, SGE_ROOT).",
    )
    command_timeout: float = Field(default=30.0, gt=0)


def resolve_working_dir(home: str, working_dir: Optional[str]) -> str:
    """Absolute as given; relative (or ``~/...``) to ``home``; ``home`` when not given."""
    if not working_dir:
        return home
    if working_dir.startswith("~/"):
        working_dir = working_dir[2:]
    if working_dir.startswith("/"):
        return working_dir
    return f"{home.rstrip('/')}/{working_dir}"


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def leading_int(value: str) -> int:
    match = re.match(r"\d+", value.strip())
    return int(match.group()) if match else 0


class CommandLineBackend(Backend):
    settings: CommandLineSettings
    #: Lower-case fragments of a failed command's output meaning "the scheduler did not answer".
    unreachable_markers: ClassVar[tuple[str, ...]] = ()
    #: ... and meaning "the scheduler refuses this user's calls for now" (a rate limit).
    rate_limit_markers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: BackendSettings, context: Any) -> None:
        super().__init__(settings, context)
        self.transport: Transport = make_transport(self.settings.transport)
        if isinstance(self.transport, LocalTransport):
            # On the login node itself, relative paths mean the Jupyter root directory.
            self.transport.set_home(self.context.root_dir)

    def local_path(self, working_dir: Optional[str]) -> Optional[Path]:
        if not isinstance(self.transport, LocalTransport):
            return None
        return Path(resolve_working_dir(str(self.context.root_dir), working_dir))

    @property
    def submitting_user(self) -> Optional[str]:
        return self.user

    @property
    def user(self) -> str:
        """Who the scheduler sees: the SSH login, or the user this server runs as."""
        transport = self.settings.transport
        if isinstance(transport, SSHTransportSettings) and transport.username:
            return transport.username
        return unix_user()

    @property
    def commands_run(self) -> int:
        return self.transport.commands_run

    async def close(self) -> None:
        await self.transport.close()

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
        start_ahead: bool = False,
    ) -> CommandResult:
        """Run a scheduler command; ClusterUnreachable when the scheduler could not be asked.
        ``cwd``: run in that directory on the cluster (a submit, in its working directory);
        a 400 on ``working_dir`` if it is not one the user can enter (nothing is run).
        ``start_ahead``: see ``Transport.run``."""
        try:
            result = await self.transport.run(
                argv,
                input=input,
                env={**self.settings.env, **(env or {})},
                timeout=self.settings.command_timeout,
                idempotent=idempotent,
                umask=umask,
                cwd=cwd,
                start_ahead=start_ahead,
            )
        except TransportError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
        except NotADirectoryError:
            raise InvalidRequest.for_field(
                "working_dir",
                f"'{cwd}' is not an existing directory on the cluster (one you can enter)",
            ) from None
        if result.returncode == 127:
            raise ClusterUnreachable(
                self.context.cluster_id, f"{argv[0]}: command not found on the cluster"
            )
        output = (result.stderr + result.stdout).lower()
        if result.returncode != 0 and any(m in output for m in self.rate_limit_markers):
            raise RateLimited(self.context.cluster_id, last_line(result.stderr))
        if result.returncode != 0 and any(m in output for m in self.unreachable_markers):
            raise ClusterUnreachable(self.context.cluster_id, last_line(result.stderr))
        return result

    async def run_checked(self, argv: list[str]) -> str:
        """stdout of a query that must succeed (a failure means we cannot see the cluster)."""
        result = await self.run(argv)
        if result.returncode != 0:
            raise ClusterUnreachable(
                self.context.cluster_id, f"{argv[0]}: {last_line(result.stderr or result.stdout)}"
            )
        return result.stdout

    async def run_control(self, argv: list[str]) -> None:
        """cancel/hold/release: a refusal is a conflict with the job's state, with the reason."""
        result = await self.run(argv)
        if result.returncode != 0:
            raise Conflict(f"{argv[0]} refused: {last_line(result.stderr or result.stdout)}")

    async def working_dir_path(self, working_dir: Optional[str]) -> str:
        """The absolute working directory on the cluster. Not checked here: a submit runs its
        command in it (``run(cwd=...)``), which checks it in the same exchange."""
        try:
            return resolve_working_dir(await self.transport.home(), working_dir)
        except TransportError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc

    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        try:
            return await self.transport.read_file(path, offset, limit)
        except TransportError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
