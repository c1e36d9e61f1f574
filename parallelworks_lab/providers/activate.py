"""Parallel Works ACTIVATE: every cluster of an account, from an API key. This module is the
provider; each cluster's backend is :mod:`.activate_backend`, reaching login nodes is
:mod:`.activate_ssh`.

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
import logging
import re
import time
from typing import Any, Literal, Optional

from pydantic import Field, SecretStr, ValidationError

from ..backends.base import BackendContext, BackendSettings
from ..clusters import ClusterConfig
from ..errors import Conflict
from . import ClusterProvider, ClusterRegistry
from .activate_backend import (
    ACTIVE,
    TRANSITIONAL,
    ActivateBackend,
    ActivateCluster,
    imposed_status,
)
from .activate_ssh import ActivateSSHSettings
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

SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


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
