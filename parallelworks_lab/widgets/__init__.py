"""Notebook widgets (stock ipywidgets, no frontend build): a resource form (:mod:`.form`), a
job monitor (:mod:`.monitor`) and a job table (:mod:`.table`).

They never ask the scheduler anything and never poll one request per widget: all widgets of a
client share its :class:`~parallelworks_lab.client.JobFeed` (one push-event subscription to the
Jupyter server, or one job-list request per interval when events are unavailable).
"""

from __future__ import annotations

from .form import ResourceForm
from .monitor import JobMonitor
from .table import JobTable

__all__ = ["JobMonitor", "JobTable", "ResourceForm"]
