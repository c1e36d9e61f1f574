"""Cluster configuration and the runtime object that pairs a cluster with its backend."""

from __future__ import annotations

import time
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from .backends.base import Backend
from .errors import ClusterUnreachable
from .limits import options_schema
from .models import CLUSTER_ID_PATTERN, ClusterDetail, ClusterSummary, Partition
from .privacy import readers

DEFAULT_CLUSTERS: list[dict[str, Any]] = [
    {"id": "local", "kind": "local", "description": "Runs jobs on the machine JupyterLab runs on."}
]


class ClusterConfig(BaseModel):
    """The keys every cluster entry has; the rest of the entry belongs to its backend."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CLUSTER_ID_PATTERN)
    kind: str
    name: Optional[str] = None
    description: str = ""
    poll_interval: Optional[float] = Field(default=None, gt=0)
    discovery_ttl: float = Field(default=30.0, ge=0)
    python: str = Field(default="python3", min_length=1)

    @classmethod
    def split(cls, entry: dict[str, Any]) -> tuple[ClusterConfig, dict[str, Any]]:
        common = {k: v for k, v in entry.items() if k in cls.model_fields}
        backend_options = {k: v for k, v in entry.items() if k not in cls.model_fields}
        return cls.model_validate(common), backend_options


class Cluster:
    def __init__(self, config: ClusterConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.status = "ok"
        self.status_message: Optional[str] = None
        self._partitions: Optional[list[Partition]] = None
        self._partitions_at = 0.0

    @property
    def id(self) -> str:
        return self.config.id

    def set_status(self, status: str, message: Optional[str] = None) -> bool:
        """Record the cluster's health; True when it changed."""
        changed = (status, message) != (self.status, self.status_message)
        self.status, self.status_message = status, message
        return changed

    async def partitions(self, fresh: bool = False) -> list[Partition]:
        """Partitions from the backend, cached for ``discovery_ttl`` seconds."""
        age = time.monotonic() - self._partitions_at
        if fresh or self._partitions is None or age > self.config.discovery_ttl:
            try:
                self._partitions = await self.backend.discover()
            except ClusterUnreachable as exc:
                self.set_status(exc.cluster_status, exc.message)
                raise
            except OSError as exc:
                self.set_status("unreachable", str(exc))
                raise ClusterUnreachable(self.id, str(exc)) from exc
            self._partitions_at = time.monotonic()
            self.set_status("ok")
        return self._partitions

    def cached_partitions(self) -> Optional[list[Partition]]:
        """The partitions of the last discovery, however old (never asks the scheduler)."""
        return self._partitions

    def summary(self) -> ClusterSummary:
        return ClusterSummary(
            id=self.id,
            name=self.config.name or self.id,
            kind=self.config.kind,
            status=self.status,
            status_message=self.status_message,
            description=self.config.description,
            outputs_readable_by=readers(self.backend.settings.umask),
            output_umask=self.backend.settings.output_umask,
            python=self.config.python,
        )

    async def detail(self, polls: int = 0) -> ClusterDetail:
        partitions = await self.partitions()
        return ClusterDetail(
            **self.summary().model_dump(),
            partitions=partitions,
            options_schema=options_schema(partitions, self.backend.unsupported_fields),
            polls=polls,
            scheduler_commands=self.backend.commands_run,
        )
