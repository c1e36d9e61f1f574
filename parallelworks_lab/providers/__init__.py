"""Cluster providers: config entries that stand for many clusters, known only at run time.

A provider (e.g. ``kind: "activate"``, a Parallel Works ACTIVATE account) adds and removes
clusters on the :class:`~parallelworks_lab.service.JobService` while the server runs, through the
small :class:`ClusterRegistry` interface below. Each cluster it adds is an ordinary
:class:`~parallelworks_lab.clusters.Cluster` with its own backend and poller.
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, Protocol

from ..backends.base import BackendContext
from ..clusters import Cluster, ClusterConfig

PROVIDERS = {"activate": "parallelworks_lab.providers.activate.ActivateProvider"}


class ClusterRegistry(Protocol):
    """What a provider may do to the service."""

    poll_interval: float

    async def add_cluster(self, cluster: Cluster) -> None: ...

    async def remove_cluster(self, cluster_id: str) -> None: ...

    def cluster_changed(self, cluster: Cluster) -> None: ...


class ClusterProvider(abc.ABC):
    """A config entry that adds clusters at run time."""

    def __init__(self, config: ClusterConfig, registry: ClusterRegistry) -> None:
        self.config = config
        self.registry = registry

    @property
    def id(self) -> str:
        return self.config.id

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls,
        config: ClusterConfig,
        options: dict[str, Any],
        registry: ClusterRegistry,
        context: BackendContext,
    ) -> ClusterProvider:
        """Validate the entry (errors at start-up, like a cluster's)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin adding clusters; called once the service has started."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop refreshing (the service closes the clusters themselves)."""


def load_provider_class(path: str) -> type[ClusterProvider]:
    module_name, _, attr = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, ClusterProvider)):
        raise TypeError(f"{path} is not a ClusterProvider class")
    return cls
