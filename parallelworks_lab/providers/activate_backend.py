"""One ACTIVATE cluster as a backend: watching, cancel, hold and release through the platform
(one job list per interval for the whole account, shared by the provider), submit and logs with
the shared Slurm command-line backend over SSH to the login node, and what the cluster's status
says while the platform has it off or SSH is impossible."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Optional

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
from ..privacy import private_dir, write_json_private
from ..states import TERMINAL_STATES, JobState
from ..transports import TransportError
from .activate_ssh import NoSSH, login_ssh_settings
from .platform import (
    PlatformAuthError,
    PlatformCluster,
    PlatformError,
    PlatformJob,
    PlatformUnreachable,
)

if TYPE_CHECKING:
    from .activate import ActivateProvider

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
            target = login_ssh_settings(self.provider.settings.ssh, platform, self.context)
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
