"""Parallel Works ACTIVATE: every cluster of an account, from an API key.

* The provider (one config entry, ``kind: "activate"``) lists the account's clusters
  (``GET /api/clusters``) every ``refresh_interval`` seconds and keeps one cluster of ours per
  platform cluster (``<entry id>-<name>``), with the platform's status mapped to ours.
* Watching costs the schedulers nothing: one ``GET /api/scheduler-jobs`` (served from the
  platform agents' caches) per poll interval answers for all of the account's clusters. Only a
  job that ended (or left that list) is looked up once over SSH (``squeue``, then the scheduler's
  history) for its exit code.
* Cancel, hold and release go through the platform (``…/scheduler-jobs/{id}/command``); a cluster
  that is off is started with ``…/resume`` (or ``…/provision`` the first time).
* The platform has no "submit this script" call: submit and logs use the Slurm backend over SSH
  to the cluster's login node (address and user from the platform, key from our config or the
  SSH agent). Where that is not possible the cluster's status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..backends.base import (
    Backend,
    BackendContext,
    BackendSettings,
    JobStatus,
    SubmitRequest,
    SubmitResult,
)
from ..backends.slurm_cli import SlurmCommandLineBackend, SlurmSettings
from ..backends.slurm_partitions import name_list, parse_minutes
from ..backends.slurm_states import normalize
from ..clusters import Cluster, ClusterConfig
from ..errors import ClusterUnreachable, Conflict, CredentialsRejected
from ..models import Partition
from ..privacy import private_dir, replace_private, write_json_private
from ..states import TERMINAL_STATES, JobState
from ..transports import TransportError
from ..transports.ssh import JumpHostSettings, SSHTransportSettings
from . import ClusterProvider, ClusterRegistry
from .platform import (
    CredentialError,
    PlatformAuthError,
    PlatformClient,
    PlatformCluster,
    PlatformError,
    PlatformJob,
    PlatformUnreachable,
    resolve_credentials,
)

log = logging.getLogger("parallelworks_lab.activate")

# Platform cluster status -> (our status, what to tell the user); None: usable.
STATUS_MAP: dict[str, Optional[tuple[str, str]]] = {
    "active": None,
    "on": None,
    "updating": None,
    "off": ("off", "switched off on the platform; start it from the cluster list"),
    "stopped": ("off", "stopped on the platform; start it from the cluster list"),
    "provisioning": ("starting", "provisioning on the platform"),
    "resuming": ("starting", "resuming on the platform"),
    "connecting": ("starting", "connecting to the platform"),
    "stopping": ("stopping", "stopping on the platform"),
    "failed": ("error", "failed on the platform"),
    "input_needed": ("error", "needs input on the platform before it can start"),
}
ACTIVE = frozenset(k for k, v in STATUS_MAP.items() if v is None)
TRANSITIONAL = frozenset({"starting", "stopping"})
NODE_SHAPES_TTL = 600.0  # seconds: CPUs/memory/GPUs per node change with hardware, not jobs
LOOKUP_BACKOFF_MAX = 300.0  # seconds between SSH look-ups of a job nobody can find
SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


class ActivateSSHSettings(BaseModel):
    """How this server reaches the clusters' login nodes (the address comes from the platform)."""

    model_config = ConfigDict(extra="forbid")

    key_file: Optional[str] = Field(
        default=None, description="Private key; without one the SSH agent / default keys are used."
    )
    known_hosts: Optional[str] = Field(
        default=None,
        description="known_hosts file; default: the host keys the platform reports for the "
        "cluster, else ~/.ssh/known_hosts.",
    )
    check_host_key: bool = True
    username: Optional[str] = Field(default=None, description="Overrides the platform's user.")
    host: Optional[str] = Field(default=None, description="Overrides the platform's address.")
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    jump_host: Optional[JumpHostSettings] = None
    connect_timeout: float = Field(default=15.0, gt=0)
    keepalive_interval: float = Field(default=30.0, gt=0)


class ActivateSettings(BackendSettings):
    api_key: Optional[SecretStr] = None
    api_key_file: Optional[str] = None
    platform_host: Optional[str] = None
    ssh: ActivateSSHSettings = Field(default_factory=ActivateSSHSettings)
    refresh_interval: float = Field(default=60.0, gt=0)
    start_poll_interval: float = Field(
        default=5.0, gt=0, description="Cluster list refresh while a cluster starts or stops."
    )
    request_timeout: float = Field(default=15.0, gt=0)
    initial_wait: float = Field(
        default=5.0, ge=0, description="Seconds start-up waits for the first cluster list."
    )
    clusters: Optional[list[str]] = Field(
        default=None, description="Only these platform cluster names (default: all)."
    )
    slurm_env: dict[str, str] = Field(default_factory=dict)
    command_timeout: float = Field(default=30.0, gt=0)
    history: Literal["auto", "sacct", "sacct-c", "none"] = "auto"


class NoSSH(Exception):
    """Why this server cannot SSH to a cluster."""


def parse_connection(text: Optional[str]) -> tuple[Optional[str], Optional[str], Optional[int]]:
    """(user, host, port) from ``user@host``, ``ssh -p 2222 user@host`` or ``ssh://user@host:22``."""
    if not text:
        return None, None, None
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    user = host = None
    port: Optional[int] = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "ssh":
            pass
        elif word == "-p" and i + 1 < len(words):
            port = int(words[i + 1]) if words[i + 1].isdigit() else None
            i += 1
        elif word.startswith("-"):
            if word in ("-J", "-i", "-o", "-l", "-F") and i + 1 < len(words):
                if word == "-l":
                    user = words[i + 1]
                i += 1
        else:
            target = word.removeprefix("ssh://")
            if "@" in target:
                user, target = target.rsplit("@", 1)
            if target.count(":") == 1:
                target, _, maybe_port = target.partition(":")
                if maybe_port.isdigit():
                    port = int(maybe_port)
            host = target or host
        i += 1
    return user, host, port


class ActivateCluster(Cluster):
    """A platform cluster: while the platform says it is off/starting/failed, that status wins
    over what the poller finds; when SSH is impossible the status says so."""

    backend: ActivateBackend

    def __init__(self, config: ClusterConfig, backend: ActivateBackend) -> None:
        super().__init__(config, backend)
        self.imposed: Optional[tuple[str, str]] = None

    def set_status(self, status: str, message: Optional[str] = None) -> bool:
        if self.imposed is not None:
            status, message = self.imposed
        elif status == "ok" and self.backend.ssh_problem:
            status = "degraded"
            message = (
                f"watching and cancel work through the platform, but submit and logs need SSH: "
                f"{self.backend.ssh_problem}"
            )
        return super().set_status(status, message)

    def recheck(self) -> bool:
        """Re-evaluate an ok/degraded status after SSH started or stopped working."""
        return self.status in ("ok", "degraded") and self.set_status("ok")

    def impose(self, imposed: Optional[tuple[str, str]]) -> bool:
        """Set (or lift, with None) the platform's word on this cluster's status."""
        self.imposed = imposed
        return self.set_status("ok") if imposed is None else self.set_status(*imposed)


class ActivateBackend(Backend):
    """One platform cluster: platform for watching/control, Slurm over SSH for submit/logs."""

    kind: ClassVar[str] = "activate"

    def __init__(
        self, provider: ActivateProvider, platform: PlatformCluster, context: BackendContext
    ) -> None:
        super().__init__(BackendSettings(), context)
        self.provider = provider
        self.platform = platform
        self.slurm: Optional[SlurmCommandLineBackend] = None
        self._ssh_target: Optional[tuple[Any, ...]] = None
        self.no_ssh: Optional[str] = None  # why SSH is impossible (from the platform's data)
        self.ssh_error: Optional[str] = None  # the last SSH failure, cleared on success
        self.unusable: Optional[str] = None  # a placeholder's reason (no platform cluster)
        self.unusable_status = "unreachable"
        self.on_ssh_change: Callable[[], None] = lambda: None
        self._shapes: dict[str, Partition] = {}
        self._shapes_at = -NODE_SHAPES_TTL
        self._first_missing: dict[str, float] = {}
        self._lookups: dict[str, tuple[int, float]] = {}  # native id -> (tries, not before)
        self._seen: set[str] = set()
        self._state_file = context.state_dir / "activate-jobs.json"
        self._held: set[str] = set()
        self._arrays: set[str] = set()
        self._load_state()

    # -- state kept across restarts: array jobs (watched over SSH) and holds ---------------------

    def _load_state(self) -> None:
        try:
            data = json.loads(self._state_file.read_text())
            self._held = set(data.get("held", []))
            self._arrays = set(data.get("arrays", []))
        except (OSError, ValueError, AttributeError):
            pass

    def _save_state(self) -> None:
        private_dir(self._state_file.parent)
        data = {"held": sorted(self._held), "arrays": sorted(self._arrays)}
        write_json_private(self._state_file, data)

    # -- the platform's view -------------------------------------------------------------------

    @property
    def ssh_problem(self) -> Optional[str]:
        return self.no_ssh or self.ssh_error

    @property
    def owner(self) -> str:
        return self.platform.user or self.provider.username or ""

    def _require_active(self) -> None:
        if self.unusable is not None:
            if self.unusable_status == "auth_rejected":
                raise CredentialsRejected(self.context.cluster_id, self.unusable)
            raise ClusterUnreachable(self.context.cluster_id, self.unusable)
        imposed = imposed_status(self.platform)
        if imposed is not None:
            raise ClusterUnreachable(self.context.cluster_id, imposed[1])

    def _require_ssh(self) -> SlurmCommandLineBackend:
        self._require_active()
        if self.slurm is None:
            raise ClusterUnreachable(
                self.context.cluster_id, f"SSH to the cluster is not possible: {self.no_ssh}"
            )
        return self.slurm

    def platform_error(self, exc: PlatformError) -> ClusterUnreachable:
        if isinstance(exc, PlatformAuthError):
            return CredentialsRejected(self.context.cluster_id, exc.message)
        return ClusterUnreachable(self.context.cluster_id, exc.message)

    def update(self, platform: PlatformCluster) -> bool:
        """New data from the platform; True when the SSH side was rebuilt (address changed)."""
        self.platform = platform
        try:
            target = self.provider.ssh_settings(platform, self.context)
        except NoSSH as exc:
            self.no_ssh, target = str(exc), None
        else:
            self.no_ssh = None
        key = None if target is None else tuple(sorted(target.model_dump().items(), key=str))
        if key == self._ssh_target:
            return False
        old, self.slurm, self._ssh_target = self.slurm, None, key
        self.ssh_error = None
        if old is not None:
            self.provider.spawn(old.close())
        if target is not None:
            settings = SlurmSettings(
                transport=target,
                env=self.provider.settings.slurm_env,
                command_timeout=self.provider.settings.command_timeout,
                history=self.provider.settings.history,
            )
            self.slurm = SlurmCommandLineBackend(settings, self.context)
        return True

    async def probe_ssh(self) -> None:
        """Log in once (no scheduler command) so the status tells early whether SSH works."""
        if self.slurm is None:
            return
        before = self.ssh_error
        try:
            await self.slurm.transport.home()
        except (TransportError, OSError) as exc:
            self.ssh_error = str(exc)
        else:
            self.ssh_error = None
        if self.ssh_error != before:
            self.on_ssh_change()

    async def _ssh(self, call: Any) -> Any:
        """Run an SSH-side coroutine, recording whether SSH works."""
        before = self.ssh_error
        try:
            result = await call
        except (ClusterUnreachable, OSError) as exc:
            self.ssh_error = exc.message if isinstance(exc, ClusterUnreachable) else str(exc)
            raise
        else:
            self.ssh_error = None
            return result
        finally:
            if self.ssh_error != before:
                self.on_ssh_change()

    # -- Backend -------------------------------------------------------------------------------

    @property
    def commands_run(self) -> int:
        return self.slurm.commands_run if self.slurm is not None else 0

    async def close(self) -> None:
        if self.slurm is not None:
            await self.slurm.close()

    async def power_on(self) -> None:
        await self.provider.power_on(self)

    async def discover(self) -> list[Partition]:
        self._require_active()
        try:
            queues = await self.provider.client_or_fail().scheduler_queues(
                self.owner, self.platform.name
            )
        except PlatformError as exc:
            raise self.platform_error(exc) from exc
        shapes = await self._node_shapes()
        partitions = []
        for queue in queues:
            name = queue.name.rstrip("*")
            shape = shapes.get(name)
            partitions.append(
                Partition(
                    name=name,
                    default=queue.name.endswith("*") or bool(shape and shape.default),
                    max_time_minutes=_minutes(queue.max_time),
                    max_nodes=shape.max_nodes if shape else None,
                    nodes_total=queue.total_nodes,
                    nodes_idle=queue.idle_nodes,
                    cpus_per_node=shape.cpus_per_node if shape else 0,
                    cpus_idle=None,
                    memory_mb_per_node=shape.memory_mb_per_node if shape else 0,
                    gpus_per_node=shape.gpus_per_node if shape else 0,
                    gpu_types=shape.gpu_types if shape else [],
                    state=queue.state.lower() or "up",
                    accounts=_names(queue.allow_accounts),
                    deny_accounts=_names(queue.deny_accounts),
                    qos=_names(queue.allow_qos),
                )
            )
        return partitions

    async def _node_shapes(self) -> dict[str, Partition]:
        """CPUs, memory and GPUs per node (the platform's queues do not say), via sinfo over
        SSH at most every ten minutes; without SSH the platform's data alone is used."""
        if self.slurm is None or time.monotonic() - self._shapes_at < NODE_SHAPES_TTL:
            return self._shapes
        try:
            found = await self._ssh(self.slurm.discover())
        except (ClusterUnreachable, OSError) as exc:
            log.info("%s: node sizes over SSH unavailable: %s", self.context.cluster_id, exc)
            return self._shapes
        self._shapes = {p.name: p for p in found}
        self._shapes_at = time.monotonic()
        return self._shapes

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        slurm = self._require_ssh()
        result: SubmitResult = await self._ssh(slurm.submit(request))
        if request.resources.array:
            self._arrays.add(result.native_id)
            self._save_state()
        return result

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        self._require_active()
        arrays = [n for n in native_ids if "_" in n or n in self._arrays]
        plain = [n for n in native_ids if n not in arrays]
        try:
            listed = await self.provider.jobs_on(self)
        except PlatformError as exc:
            raise self.platform_error(exc) from exc
        statuses: dict[str, JobStatus] = {}
        history: list[str] = []
        now = time.monotonic()
        grace = 3 * (self.provider.poll_interval + 1)
        for native_id in plain:
            job = listed.get(native_id)
            if job is None:
                # Gone from the list: ended (look it up), or not listed yet (wait a bit). One
                # the scheduler cannot find either is asked about less and less often.
                first = self._first_missing.setdefault(native_id, now)
                tries, not_before = self._lookups.get(native_id, (0, 0.0))
                if (native_id in self._seen or now - first > grace) and now >= not_before:
                    history.append(native_id)
                    delay = min(LOOKUP_BACKOFF_MAX, self.provider.poll_interval * 2**tries)
                    self._lookups[native_id] = (tries + 1, now + delay)
                continue
            self._seen.add(native_id)
            self._first_missing.pop(native_id, None)
            status = self._status(native_id, job)
            if status.state in TERMINAL_STATES:
                history.append(native_id)  # for its exit code and times
            statuses[native_id] = status
        if history and self.slurm is not None:
            try:
                # One squeue (recently ended jobs keep their exit code there), then the
                # scheduler's history for those already gone: once per job end, not per interval.
                ended = await self._ssh(self.slurm.poll(history))
            except (ClusterUnreachable, OSError) as exc:
                log.warning("%s: job history over SSH failed: %s", self.context.cluster_id, exc)
                ended = {}
            for native_id, status in ended.items():
                if status.state in TERMINAL_STATES or native_id not in statuses:
                    statuses[native_id] = status
        if arrays and self.slurm is not None:
            with contextlib.suppress(ClusterUnreachable, OSError):
                statuses.update(await self._ssh(self.slurm.poll(arrays)))
        for native_id, status in statuses.items():
            if status.state in TERMINAL_STATES:
                if status.state is JobState.COMPLETED and status.exit_code is None:
                    status.exit_code = 0
                self._forget(native_id)  # the poller asks no more about it
        return statuses

    def _status(self, native_id: str, job: PlatformJob) -> JobStatus:
        words = job.state or ["UNKNOWN"]
        state = normalize(words[0])
        reason = None
        if state is JobState.QUEUED and native_id in self._held:
            state, reason = JobState.HELD, "JobHeldUser"
        elif state is not JobState.QUEUED and native_id in self._held:
            self._held.discard(native_id)
            self._save_state()
        return JobStatus(state=state, raw_state=",".join(words), reason=reason)

    def _forget(self, native_id: str) -> None:
        self._seen.discard(native_id)
        self._first_missing.pop(native_id, None)
        self._lookups.pop(native_id, None)
        if native_id in self._held or native_id in self._arrays:
            self._held.discard(native_id)
            self._arrays.discard(native_id)
            self._save_state()

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        result: Optional[SubmitResult] = await self._ssh(
            self._require_ssh().find_by_token(submit_token)
        )
        return result

    async def _command(self, native_id: str, action: str) -> None:
        self._require_active()
        try:
            await self.provider.client_or_fail().job_command(
                self.owner, self.platform.name, native_id, action
            )
        except (PlatformUnreachable, PlatformAuthError) as exc:
            raise self.platform_error(exc) from exc
        except PlatformError as exc:
            raise Conflict(
                f"the platform refused to {action} job {native_id}: {exc.message}"
            ) from exc
        self.provider.invalidate_jobs()

    async def cancel(self, native_id: str) -> None:
        await self._command(native_id, "cancel")

    async def hold(self, native_id: str) -> None:
        await self._command(native_id, "hold")
        self._held.add(native_id)
        self._save_state()

    async def release(self, native_id: str) -> None:
        await self._command(native_id, "release")
        self._held.discard(native_id)
        self._save_state()

    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        data: bytes = await self._ssh(self._require_ssh().read_log(path, offset, limit))
        return data


def imposed_status(platform: PlatformCluster) -> Optional[tuple[str, str]]:
    """Our status for a platform cluster that is not usable (None when it is)."""
    mapped = STATUS_MAP.get(platform.status, ("error", f"{platform.status} on the platform"))
    if mapped is not None and platform.status_description:
        return mapped[0], f"{mapped[1]}: {platform.status_description}"
    return mapped


def _minutes(value: Optional[str]) -> Optional[int]:
    try:
        return parse_minutes(value or "")
    except ValueError:
        return None


def _names(names: Optional[list[str]]) -> list[str]:
    """A queue's allow or deny list; ``["ALL"]`` or none: no restriction."""
    return name_list(",".join(names or []))


def _slug(value: str) -> str:
    return SLUG.sub("-", value).strip("-.")[:40] or "cluster"


class ActivateProvider(ClusterProvider):
    """One Parallel Works ACTIVATE account: keeps one cluster of ours per platform cluster."""

    def __init__(
        self,
        config: ClusterConfig,
        settings: ActivateSettings,
        registry: ClusterRegistry,
        context: BackendContext,
    ) -> None:
        super().__init__(config, registry)
        self.settings = settings
        self.context = context
        self.client: Optional[PlatformClient] = None
        self.credential_problem: Optional[str] = None
        if settings.api_key is not None:
            # Jupyter prints its whole configuration with --debug: an inline key is in it.
            log.warning(
                "cluster %s: api_key is given inline in the configuration, which "
                "`jupyter lab --debug` prints; use api_key_file or PW_API_KEY instead",
                config.id,
            )
        try:
            key, base_url = resolve_credentials(
                settings.api_key.get_secret_value() if settings.api_key else None,
                settings.api_key_file,
                settings.platform_host,
            )
        except CredentialError as exc:
            self.credential_problem = str(exc)
            self.base_url = ""
        else:
            self.base_url = base_url
            self.client = PlatformClient(key, base_url, timeout=settings.request_timeout)
        self.username: Optional[str] = None
        self.members: dict[str, ActivateCluster] = {}  # by platform cluster id
        self.placeholder: Optional[ActivateCluster] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._first_refresh = asyncio.Event()
        self._wake = asyncio.Event()
        self._jobs: Optional[dict[str, dict[str, PlatformJob]]] = None
        self._jobs_at = 0.0
        self._jobs_task: Optional[asyncio.Task[dict[str, dict[str, PlatformJob]]]] = None
        self._background: set[asyncio.Task[Any]] = set()
        self.last_error: Optional[str] = None

    @classmethod
    def from_config(
        cls,
        config: ClusterConfig,
        options: dict[str, Any],
        registry: ClusterRegistry,
        context: BackendContext,
    ) -> ActivateProvider:
        try:
            settings = ActivateSettings.model_validate(options)
        except ValidationError as exc:
            # Pydantic would quote the offending values; an API key must never be echoed.
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise ValueError(f"cluster '{config.id}' (activate): invalid {fields}") from None
        return cls(config, settings, registry, context)

    @property
    def poll_interval(self) -> float:
        return self.config.poll_interval or self.registry.poll_interval

    def client_or_fail(self) -> PlatformClient:
        if self.client is None:
            raise PlatformAuthError(self.credential_problem or "no API key")
        return self.client

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"pwlab-activate-{self.id}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(self._first_refresh.wait()), self.settings.initial_wait
            )
        if not self._first_refresh.is_set():
            await self._show_placeholder("starting", f"asking {self.base_url} for clusters…")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._background):
            task.cancel()
        if self.client is not None:
            await self.client.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ACTIVATE provider %s: refresh failed", self.id)
            self._first_refresh.set()
            delay = self.settings.refresh_interval
            if any(m.imposed and m.imposed[0] in TRANSITIONAL for m in self.members.values()):
                delay = min(delay, self.settings.start_poll_interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()

    # -- the cluster list ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """One ``GET /api/clusters``; add, update and remove our clusters to match."""
        if self.client is None:
            await self._fail("auth_rejected", f"Parallel Works ACTIVATE: {self.credential_problem}")
            return
        try:
            found = await self.client.clusters()
        except PlatformAuthError as exc:
            await self._fail(
                "auth_rejected",
                f"Parallel Works ACTIVATE: API key rejected by {self.base_url} "
                f"(HTTP {exc.status}); check api_key / api_key_file / PW_API_KEY",
            )
            return
        except PlatformError as exc:
            await self._fail(
                "unreachable",
                f"Parallel Works ACTIVATE: {exc.message}; clusters and jobs are kept and "
                "refreshed when it answers",
            )
            return
        self.last_error = None
        wanted = [
            c
            for c in found
            if c.status != "deleted"
            and (self.settings.clusters is None or c.name in self.settings.clusters)
        ]
        if wanted and self.username is None:
            self.username = next((c.user for c in wanted if c.user), None)
        for platform in sorted(wanted, key=lambda c: (c.name, c.user or "", c.id)):
            member = self.members.get(platform.id)
            if member is None:
                member = self._new_member(platform)
                self.members[platform.id] = member
                await self.registry.add_cluster(member)
                probe = True
            else:
                was_usable = member.backend.platform.status in ACTIVE
                probe = member.backend.update(platform) or not was_usable
                if member.impose(imposed_status(platform)):
                    self.registry.cluster_changed(member)
            if probe and platform.status in ACTIVE:
                self.spawn(member.backend.probe_ssh())
        gone = set(self.members) - {c.id for c in wanted}
        for platform_id in gone:
            member = self.members.pop(platform_id)
            await self.registry.remove_cluster(member.id)
        if wanted:
            await self._drop_placeholder()
        else:
            await self._show_placeholder("error", "no clusters in this ACTIVATE account")

    def _member_id(self, platform: PlatformCluster) -> str:
        taken = {m.id for m in self.members.values()}
        candidates = [f"{self.id}-{_slug(platform.name)}"]
        if platform.user:
            candidates.append(f"{self.id}-{_slug(platform.user)}-{_slug(platform.name)}")
        candidates.append(f"{self.id}-{_slug(platform.name)}-{_slug(platform.id)[:8]}")
        for candidate in candidates:
            candidate = candidate[:64]
            if candidate not in taken and candidate != self.id:
                return candidate
        return f"{self.id}-{_slug(platform.id)}"[:64]

    def _new_member(self, platform: PlatformCluster) -> ActivateCluster:
        cluster_id = self._member_id(platform)
        context = BackendContext(
            cluster_id=cluster_id,
            state_dir=self.context.state_dir.parent / cluster_id,
            root_dir=self.context.root_dir,
        )
        backend = ActivateBackend(self, platform, context)
        backend.update(platform)
        kind = platform.type or "cluster"
        description = (platform.description or "").strip()
        description = (description + " — " if description else "") + f"ACTIVATE {kind}"
        config = ClusterConfig(
            id=cluster_id,
            kind="activate",
            name=platform.display_name or platform.name,
            description=description,
            poll_interval=self.config.poll_interval,
            discovery_ttl=self.config.discovery_ttl,
            python=self.config.python,
        )
        member = ActivateCluster(config, backend)
        member.impose(imposed_status(platform))

        def ssh_changed() -> None:
            if member.recheck():
                self.registry.cluster_changed(member)

        backend.on_ssh_change = ssh_changed
        return member

    async def _fail(self, status: str, message: str) -> None:
        """The list could not be read: keep every cluster (and its jobs), say why on each."""
        if message != self.last_error:
            log.warning("ACTIVATE provider %s: %s", self.id, message)
        self.last_error = message
        if not self.members:
            await self._show_placeholder(status, message)
            return
        for member in self.members.values():
            if member.impose((status, message)):
                self.registry.cluster_changed(member)

    async def _show_placeholder(self, status: str, message: str) -> None:
        """With no platform cluster to show, the entry itself tells the user what is wrong."""
        if self.placeholder is None:
            context = BackendContext(
                cluster_id=self.id,
                state_dir=self.context.state_dir,
                root_dir=self.context.root_dir,
            )
            platform = PlatformCluster(id="", name=self.id, status="failed")
            backend = ActivateBackend(self, platform, context)
            backend.unusable, backend.unusable_status = message, status
            config = ClusterConfig(
                id=self.id,
                kind="activate",
                name=self.config.name,
                description=self.config.description or "Parallel Works ACTIVATE account",
                python=self.config.python,
            )
            self.placeholder = ActivateCluster(config, backend)
            self.placeholder.impose((status, message))
            await self.registry.add_cluster(self.placeholder)
        else:
            self.placeholder.backend.unusable = message
            self.placeholder.backend.unusable_status = status
            if self.placeholder.impose((status, message)):
                self.registry.cluster_changed(self.placeholder)

    async def _drop_placeholder(self) -> None:
        if self.placeholder is not None:
            self.placeholder = None
            await self.registry.remove_cluster(self.id)

    # -- SSH addresses -------------------------------------------------------------------------

    def ssh_settings(
        self, platform: PlatformCluster, context: BackendContext
    ) -> SSHTransportSettings:
        """The login node's SSH settings, or NoSSH with the reason."""
        ssh = self.settings.ssh
        if platform.scheduler_type and platform.scheduler_type.lower() != "slurm":
            raise NoSSH(
                f"its scheduler is {platform.scheduler_type}; jobs are submitted from here to "
                "Slurm clusters only"
            )
        user, host, port = parse_connection(platform.connection_string)
        host = ssh.host or host or platform.ip_address or None
        if platform.should_platform_proxy and not (ssh.host or ssh.jump_host):
            raise NoSSH(
                "the platform routes SSH to it through its own proxy (shouldPlatformProxy); "
                "set ssh.host or ssh.jump_host to a route this server can use"
            )
        if not host:
            raise NoSSH("the platform gives no address for its login node")
        username = ssh.username or user or platform.user
        port = ssh.port or port or 22
        known_hosts = ssh.known_hosts
        if known_hosts is None and platform.ssh_host_keys and ssh.check_host_key:
            known_hosts = str(self._write_known_hosts(context, host, port, platform.ssh_host_keys))
        return SSHTransportSettings(
            type="ssh",
            host=host,
            port=port,
            username=username,
            key_file=ssh.key_file,
            known_hosts=known_hosts,
            check_host_key=ssh.check_host_key,
            jump_host=ssh.jump_host,
            keepalive_interval=ssh.keepalive_interval,
            connect_timeout=ssh.connect_timeout,
        )

    @staticmethod
    def _write_known_hosts(context: BackendContext, host: str, port: int, keys: list[str]) -> Path:
        """The host keys the platform's agent reported (over our authenticated HTTPS)."""
        pattern = host if port == 22 else f"[{host}]:{port}"
        lines = [f"{pattern} {key.strip()}" for key in keys if key.strip().count(" ") >= 1]
        path = context.state_dir / "known_hosts"
        private_dir(path.parent)
        replace_private(path, "".join(line + "\n" for line in lines))
        return path

    # -- jobs of every cluster, one request per interval ---------------------------------------

    def invalidate_jobs(self) -> None:
        """After a command: the next poll asks the platform again."""
        self._jobs_at = 0.0

    async def jobs_on(self, backend: ActivateBackend) -> dict[str, PlatformJob]:
        """Jobs the platform lists for one cluster, by native id (shared fetch for all)."""
        snapshot = await self._job_snapshot()
        platform = backend.platform
        for key in (platform.id, platform.name, f"{platform.user}/{platform.name}"):
            if key in snapshot:
                return snapshot[key]
        return {}

    async def _job_snapshot(self) -> dict[str, dict[str, PlatformJob]]:
        # Pollers of several clusters run at the same interval: the first to ask in each
        # interval fetches, the others reuse its answer.
        max_age = self.poll_interval
        if self._jobs is not None and time.monotonic() - self._jobs_at < max_age:
            return self._jobs
        if self._jobs_task is None or self._jobs_task.done():
            self._jobs_task = asyncio.create_task(self._fetch_jobs())
        return await asyncio.shield(self._jobs_task)

    async def _fetch_jobs(self) -> dict[str, dict[str, PlatformJob]]:
        jobs = await self.client_or_fail().scheduler_jobs()
        snapshot: dict[str, dict[str, PlatformJob]] = {}
        for job in jobs:
            snapshot.setdefault(job.cluster, {})[str(job.id)] = job
        self._jobs, self._jobs_at = snapshot, time.monotonic()
        return snapshot

    # -- switching a cluster on ----------------------------------------------------------------

    async def power_on(self, backend: ActivateBackend) -> None:
        platform = backend.platform
        if not platform.id:
            raise Conflict(f"'{backend.context.cluster_id}' is not a platform cluster")
        if platform.status in ACTIVE:
            raise Conflict(f"cluster '{backend.context.cluster_id}' is already {platform.status}")
        if platform.status not in ("off", "stopped", "failed"):
            raise Conflict(
                f"cluster '{backend.context.cluster_id}' is {platform.status}; "
                "it can be started once it is off"
            )
        client = self.client_or_fail()
        first = "resume" if platform.status == "stopped" else "provision"
        try:
            try:
                await client.cluster_action(backend.owner, platform.name, first)
            except PlatformError as exc:
                if exc.status not in (400, 404, 409, 422) or isinstance(exc, PlatformAuthError):
                    raise
                # Resume is for a stopped cluster, provision for one never built: try the other.
                other = "provision" if first == "resume" else "resume"
                await client.cluster_action(backend.owner, platform.name, other)
        except (PlatformUnreachable, PlatformAuthError) as exc:
            raise backend.platform_error(exc) from exc
        except PlatformError as exc:
            raise Conflict(f"the platform refused to start it: {exc.message}") from exc
        for member in self.members.values():
            if member.backend is backend and member.impose(("starting", "start requested")):
                self.registry.cluster_changed(member)
        self._wake.set()  # follow its progress at start_poll_interval
