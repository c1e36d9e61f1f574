"""The kernel-side Python client: the same REST API as the browser, over httpx.

``Client()`` finds the Jupyter server that started this kernel (see :func:`find_server`), and
outside any Jupyter server (a script, plain IPython) runs the job service in-process on the same
database instead. Every frontend (sidebar, magics, widgets) therefore shows the same jobs, and
the kernel never talks to a scheduler itself.

The modules of this package, one job each: :mod:`.discovery` finds the server,
:mod:`.resources` builds requests, :mod:`.connection` is the protocol that :mod:`.http` (a
running server) and :mod:`.inprocess` (no server) implement, :mod:`.display` formats,
:mod:`.job` and :mod:`.api` are the :class:`Job` and :class:`Client` users see, and
:mod:`.feed` keeps the widgets of a client up to date. Everything is importable from here.
"""

from __future__ import annotations

from .api import ACTIVE_STATES, FINISHED_STATES, Client, default_client, set_default_client
from .connection import Event, EventStream, ServerConnection
from .discovery import ENV_TOKEN, ENV_URL, ServerInfo, ServerNotFound, find_server
from .display import (
    ERROR_COLOUR,
    STATE_COLOURS,
    Clusters,
    Templates,
    format_elapsed,
    format_time,
    state_badge,
)
from .feed import JobFeed, JobListener, Subscription, TickListener
from .guidance import job_rows, suggestion_text
from .http import API_BASE, CLUSTER_SCHEMA_ID, JOB_SCHEMA_ID, HttpConnection, ServerUnavailable
from .inprocess import InProcessConnection, default_db_path, server_config
from .job import LOG_POLL_SECONDS, Job, Jobs, jobs_html
from .resources import RESOURCE_FIELDS, build_resources, parse_memory, parse_time, python_script
from .source import submission_source

__all__ = [
    "ACTIVE_STATES",
    "API_BASE",
    "CLUSTER_SCHEMA_ID",
    "ENV_TOKEN",
    "ENV_URL",
    "ERROR_COLOUR",
    "FINISHED_STATES",
    "JOB_SCHEMA_ID",
    "LOG_POLL_SECONDS",
    "RESOURCE_FIELDS",
    "STATE_COLOURS",
    "Client",
    "Clusters",
    "Event",
    "EventStream",
    "HttpConnection",
    "InProcessConnection",
    "Job",
    "JobFeed",
    "JobListener",
    "Jobs",
    "ServerConnection",
    "ServerInfo",
    "ServerNotFound",
    "ServerUnavailable",
    "Subscription",
    "Templates",
    "TickListener",
    "build_resources",
    "default_client",
    "default_db_path",
    "find_server",
    "format_elapsed",
    "format_time",
    "job_rows",
    "jobs_html",
    "parse_memory",
    "parse_time",
    "python_script",
    "server_config",
    "set_default_client",
    "state_badge",
    "submission_source",
    "suggestion_text",
]
