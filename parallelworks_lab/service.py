"""JobService: the domain logic behind every frontend. No Tornado here.

It owns the store, one cluster object (with its backend) and one poller per cluster, and fans job
changes out to listeners (the server's event bus, tests, the in-process kernel client). What it
shows is :class:`.service_views.JobViews`', what changes jobs :class:`.service_actions.JobActions`'.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

from .backends.base import Backend, BackendContext
from .clusters import DEFAULT_CLUSTERS, Cluster, ClusterConfig
from .errors import (
    Conflict,
)
from .guidance.templates import TemplateStore
from .models import (
    ClusterDetail,
    ClusterSummary,
    Job,
)
from .poller import Poller
from .providers import PROVIDERS, ClusterProvider, load_provider_class
from .service_actions import JobActions
from .store import JobStore

DEFAULT_BACKENDS = {
    "local": "parallelworks_lab.backends.local.LocalBackend",
    "slurm": "parallelworks_lab.backends.slurm.SlurmBackend",
    "sge": "parallelworks_lab.backends.sge.SGEBackend",
    "slurmrest": "parallelworks_lab.backends.slurmrest.SlurmRestBackend",
}

JobListener = Callable[[str, dict[str, Any]], None]
JOB_EVENT = "job"
CLUSTER_EVENT = "cluster"


def load_backend_class(path: Union[str, type[Backend]]) -> type[Backend]:
    if isinstance(path, type):
        return path
    module_name, _, attr = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{path} is not a Backend class")
    return cls


def job_event(job: Job) -> dict[str, Any]:
    """The event payload for one job: enough for a client to update its row."""
    return job.model_dump(
        mode="json",
        include={
            "id",
            "cluster",
            "native_id",
            "name",
            "state",
            "raw_state",
            "reason",
            "exit_code",
            "terminal",
            "submitted_at",
            "started_at",
            "ended_at",
            "updated_at",
            "parent_id",
            "array_task",
            "reason_explained",
            "estimated_start",
            "usage",
        },
    )


class JobService(JobActions):
    def __init__(
        self,
        store: JobStore,
        *,
        clusters: Optional[list[dict[str, Any]]] = None,
        backend_classes: Optional[dict[str, Union[str, type[Backend]]]] = None,
        state_dir: Path,
        root_dir: Path,
        poll_interval: float = 5.0,
        log: Optional[logging.Logger] = None,
        templates_dir: Optional[Path] = None,
    ) -> None:
        self.store = store
        self.log = log or logging.getLogger("parallelworks_lab")
        self.poll_interval = poll_interval
        self._listeners: list[JobListener] = []
        self.templates = TemplateStore(templates_dir, state_dir / "templates", self.log)
        self._details_cache: dict[tuple[str, str], tuple[float, list[str]]] = {}
        self._submitting: set[str] = set()
        self._started = False
        self._start_lock = asyncio.Lock()
        self.clusters: dict[str, Cluster] = {}
        self.pollers: dict[str, Poller] = {}
        #: Sources of clusters known only at run time (e.g. a Parallel Works ACTIVATE account).
        self.providers: dict[str, ClusterProvider] = {}
        classes = {**DEFAULT_BACKENDS, **(backend_classes or {})}
        for entry in clusters or DEFAULT_CLUSTERS:
            config, options = ClusterConfig.split(entry)
            if config.id in self.clusters or config.id in self.providers:
                raise ValueError(f"cluster id '{config.id}' is configured twice")
            context = BackendContext(
                cluster_id=config.id,
                state_dir=state_dir / "clusters" / config.id,
                root_dir=root_dir,
            )
            if config.kind in PROVIDERS and config.kind not in classes:
                provider_class = load_provider_class(PROVIDERS[config.kind])
                self.providers[config.id] = provider_class.from_config(
                    config, options, self, context
                )
                continue
            if config.kind not in classes:
                raise ValueError(
                    f"cluster '{config.id}': unknown kind '{config.kind}'; known: "
                    + ", ".join(sorted({*classes, *PROVIDERS}))
                )
            backend = load_backend_class(classes[config.kind]).from_config(options, context)
            self._attach(Cluster(config, backend))

    def _attach(self, cluster: Cluster) -> Poller:
        """Register a cluster and its poller (not started)."""
        poller = Poller(
            cluster,
            self.store,
            cluster.config.poll_interval or self.poll_interval,
            on_job_change=self._job_changed,
            on_status_change=self._cluster_changed,
            is_submitting=self._submitting.__contains__,
            log=self.log,
        )
        cluster.backend.context.request_poll = poller.wake
        self.clusters[cluster.id] = cluster
        self.pollers[cluster.id] = poller
        return poller

    async def _start_cluster(self, cluster: Cluster) -> None:
        try:
            await cluster.backend.start()
        except Exception as exc:
            self.log.warning("cluster %s did not start: %s", cluster.id, exc)
            cluster.set_status("unreachable", str(exc))
        self.pollers[cluster.id].start()

    async def add_cluster(self, cluster: Cluster) -> None:
        """Add a cluster at run time (from a provider); its poller runs once the service has."""
        if cluster.id in self.clusters:
            raise ValueError(f"cluster id '{cluster.id}' is already in use")
        self._attach(cluster)
        if self._started:
            await self._start_cluster(cluster)
        self._cluster_changed(cluster)

    async def remove_cluster(self, cluster_id: str) -> None:
        """Stop watching a cluster and forget it; its jobs stay in the store."""
        cluster = self.clusters.pop(cluster_id, None)
        poller = self.pollers.pop(cluster_id, None)
        if poller is not None:
            await poller.stop()
        if cluster is not None:
            await cluster.backend.close()
            self._emit(
                CLUSTER_EVENT,
                {"cluster": cluster_id, "status": "removed", "message": "no longer available"},
            )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            for cluster in list(self.clusters.values()):
                await self._start_cluster(cluster)
            self._started = True
            for provider in self.providers.values():
                await provider.start()

    async def stop(self) -> None:
        for provider in self.providers.values():
            await provider.stop()
        for poller in self.pollers.values():
            await poller.stop()
        for cluster in self.clusters.values():
            await cluster.backend.close()
        self._started = False

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:
                self.log.exception("event listener failed")

    def _job_changed(self, job: Job) -> None:
        self._emit(JOB_EVENT, job_event(job))

    def _cluster_changed(self, cluster: Cluster) -> None:
        self._emit(
            CLUSTER_EVENT,
            {"cluster": cluster.id, "status": cluster.status, "message": cluster.status_message},
        )

    # -- clusters ----------------------------------------------------------------------------

    def list_clusters(self) -> list[ClusterSummary]:
        return [c.summary() for c in self.clusters.values()]

    async def cluster_detail(self, cluster_id: str) -> ClusterDetail:
        return await self.cluster(cluster_id).detail(polls=self.pollers[cluster_id].polls)

    def cluster_changed(self, cluster: Cluster) -> None:
        """Tell listeners about a status a provider set on one of its clusters."""
        self._cluster_changed(cluster)

    async def start_cluster(self, cluster_id: str) -> ClusterSummary:
        """Switch on a cluster that is off (only clusters whose backend can do it)."""
        cluster = self.cluster(cluster_id)
        power_on = getattr(cluster.backend, "power_on", None)
        if power_on is None:
            raise Conflict(
                f"cluster '{cluster_id}' ({cluster.config.kind}) cannot be started from here"
            )
        await power_on()
        return cluster.summary()
