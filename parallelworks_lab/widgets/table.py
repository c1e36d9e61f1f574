"""The :class:`JobTable`: my jobs, newest first, kept current by the client's shared feed."""

from __future__ import annotations

import threading
from typing import Any, Optional

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..client import Client, Job, Subscription, default_client, jobs_html
from ..errors import PWLabError
from ..models import Job as JobInfo
from .base import Displayable


class JobTable(Displayable):
    """My jobs, newest first, kept up to date by the client's shared feed."""

    FILTERS = {"all": None, "active": "active", "finished": "finished"}

    def __init__(
        self,
        *,
        cluster: Optional[str] = None,
        show: str = "all",
        limit: int = 50,
        client: Optional[Client] = None,
    ) -> None:
        self.client = client or default_client()
        self.cluster = cluster
        self.limit = limit
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._dirty = False
        self._ticks = 0
        self.filter = widgets.ToggleButtons(options=list(self.FILTERS), value=show)
        self.table = widgets.HTML()
        self.widget = widgets.VBox([self.filter, self.table])
        self.widget.add_class("jp-pwlab-job-table")
        self.filter.observe(lambda _change: self.reload(), names="value")
        self.reload()
        self._subscription: Optional[Subscription] = self.client.feed.subscribe(
            on_job=self._on_event, on_tick=self._on_tick
        )

    @property
    def jobs(self) -> list[Job]:
        """The jobs shown, newest first."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.submitted_at, reverse=True)
        show = self.FILTERS[self.filter.value]
        if show == "active":
            jobs = [j for j in jobs if not j.terminal]
        elif show == "finished":
            jobs = [j for j in jobs if j.terminal]
        if self.cluster:
            jobs = [j for j in jobs if j.cluster == self.cluster]
        return jobs[: self.limit]

    def reload(self) -> None:
        """Load the list from the server (one request)."""
        listed = self.client.jobs(
            cluster=self.cluster, state=self.FILTERS[self.filter.value], limit=self.limit
        )
        with self._lock:
            self._jobs = {j.id: j for j in listed}
        self._render()

    def _on_event(self, data: dict[str, Any]) -> None:
        job_id = str(data.get("id", ""))
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            changed = job.apply_event(data)
        else:
            try:
                info = JobInfo.model_validate(data)
            except ValueError:  # an event carries no resources: ask for the full record once
                try:
                    info = self.client.job(job_id).info
                except PWLabError:
                    return
            with self._lock:
                self._jobs[job_id] = self.client.wrap_job(info)
            changed = True
        if changed:
            self._dirty = True

    def _on_tick(self) -> None:
        self._ticks += 1
        # Redraw on changes, and now and then for the elapsed times of running jobs.
        if self._dirty or self._ticks % 5 == 0:
            self._dirty = False
            self._render()

    def _render(self) -> None:
        self.table.value = jobs_html(self.jobs)

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        super().close()
