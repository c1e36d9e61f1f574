"""How a :class:`~parallelworks_lab.client.Client` reaches the job service: the protocol both
:class:`~.http.HttpConnection` (a running Jupyter server) and
:class:`~.inprocess.InProcessConnection` (the service in this process) implement.

Not to be confused with the server side's transports (:mod:`parallelworks_lab.transports`),
which carry commands from the service to a scheduler."""

from __future__ import annotations

from typing import Any, Optional, Protocol

from ..guidance.models import Suggestion
from ..guidance.templates import Template, TemplateIn
from ..models import ClusterDetail, ClusterSummary, JobSubmit, LogChunk
from ..models import Job as JobInfo
from ..models import JobList as JobPage

Event = tuple[str, dict[str, Any]]  # ("job", payload) or ("cluster", payload)


class EventStream(Protocol):
    def next(self, timeout: float) -> Optional[Event]:
        """The next event, None after ``timeout`` seconds; ConnectionError when broken."""

    def close(self) -> None: ...


class ServerConnection(Protocol):
    description: str
    link_base: Optional[str]
    root_dir: Optional[str]

    def clusters(self) -> list[ClusterSummary]: ...
    def cluster(self, cluster_id: str) -> ClusterDetail: ...
    def submit(self, request: JobSubmit) -> JobInfo: ...
    def jobs(
        self, cluster: Optional[str], states: list[str], limit: int, cursor: Optional[str]
    ) -> JobPage: ...
    def job(self, job_id: str) -> JobInfo: ...
    def action(self, job_id: str, action: str) -> JobInfo: ...
    def read_log(self, job_id: str, stream: str, offset: int) -> LogChunk: ...
    def events(self) -> EventStream: ...
    def suggest(self, request: JobSubmit) -> Suggestion: ...
    def templates(self) -> list[Template]: ...
    def save_template(self, template: TemplateIn) -> Template: ...
    def delete_template(self, name: str) -> None: ...
    def close(self) -> None: ...
