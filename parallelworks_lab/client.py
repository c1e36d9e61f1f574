"""The kernel-side Python client: the same REST API as the browser, over httpx.

``Client()`` finds the Jupyter server that started this kernel (see :func:`find_server`), and
outside any Jupyter server (a script, plain IPython) runs the job service in-process on the same
database instead. Every frontend (sidebar, magics, widgets) therefore shows the same jobs, and
the kernel never talks to a scheduler itself.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import html
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, Protocol, TypeVar, Union
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from . import notebook_job
from .errors import Conflict, FieldError, InvalidRequest, NotFound, PWLabError
from .models import (
    ClusterDetail,
    ClusterSummary,
    JobSubmit,
    LogChunk,
    ResourceRequest,
)
from .models import Job as JobInfo
from .models import JobList as JobPage
from .states import JobState

if TYPE_CHECKING:
    from .service import JobService

__all__ = [
    "Client",
    "Clusters",
    "Job",
    "JobFeed",
    "Jobs",
    "ServerInfo",
    "ServerNotFound",
    "ServerUnavailable",
    "default_client",
    "parse_memory",
    "parse_time",
    "set_default_client",
]

ENV_URL = "PWLAB_SERVER_URL"
ENV_TOKEN = "PWLAB_TOKEN"  # noqa: S105 - the name of a variable, not a secret
API_BASE = "parallelworks-lab"
JOB_SCHEMA_ID = "urn:parallelworks-lab:job-state"
CLUSTER_SCHEMA_ID = "urn:parallelworks-lab:cluster-status"
RESOURCE_FIELDS = tuple(ResourceRequest.model_fields)
LOG_POLL_SECONDS = 0.5

T = TypeVar("T")
log = logging.getLogger("parallelworks_lab.client")


class ServerNotFound(RuntimeError):
    """Running under Jupyter, but the server to talk to could not be found."""


class ServerUnavailable(PWLabError):
    """The Jupyter server did not answer (network error, server gone)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 503)


# -- finding the server -------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """Where the Jupyter server is. The token never shows in reprs."""

    url: str  # the server's base URL, ending in "/"
    token: str = field(repr=False)
    source: str = "explicit"
    unix_socket: Optional[str] = None
    root_dir: Optional[str] = None

    @property
    def base_path(self) -> str:
        """The URL path of the server (``/`` or ``/user/name/``), for links in HTML."""
        return urlsplit(self.url).path or "/"


def _normalize_url(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/") else url + "/"


# Addresses a server listens on, not ones to connect to (JupyterHub's bind URLs use "*").
_WILDCARD_HOST = re.compile(r"^(\w+://)(\*|0\.0\.0\.0|\[::\]|::|)(?=[:/]|$)")


def _connectable(url: str) -> str:
    """A URL of a server on this machine, with a listen-on-all address made connectable."""
    return _WILDCARD_HOST.sub(r"\g<1>127.0.0.1", _normalize_url(url), count=1)


def _ancestor_pids() -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process().parents()]
    except Exception:
        return []


def _running_servers() -> tuple[str, list[dict[str, Any]]]:
    from jupyter_core.paths import jupyter_runtime_dir
    from jupyter_server.serverapp import list_running_servers

    runtime_dir = jupyter_runtime_dir()
    return runtime_dir, list(list_running_servers(runtime_dir))


def _from_runtime_info(info: Mapping[str, Any], token: str, source: str) -> ServerInfo:
    sock = info.get("sock") or None
    if sock:
        url = "http://localhost" + str(info.get("base_url") or "/")
    else:
        url = _connectable(str(info["url"]))
    return ServerInfo(
        url=url,
        token=token,
        source=source,
        unix_socket=str(sock) if sock else None,
        root_dir=info.get("root_dir"),
    )


def find_server(environ: Optional[Mapping[str, str]] = None) -> Optional[ServerInfo]:
    """The Jupyter server this process belongs to.

    Tried in order: ``PWLAB_SERVER_URL`` (and ``PWLAB_TOKEN``); JupyterHub's environment
    (``JUPYTERHUB_SERVICE_URL`` + ``JUPYTERHUB_API_TOKEN``); the runtime file
    (``jpserver-<pid>.json``) of the server whose pid is ``JPY_PARENT_PID`` or one of this
    process's ancestors (a script in a JupyterLab terminal).

    Returns None when this process is not under Jupyter at all (no ``JPY_PARENT_PID``, no
    JupyterHub variables, no server among its ancestors): the caller may then run the service
    in-process. Raises :class:`ServerNotFound`, saying what was tried, when it is under Jupyter
    but the server cannot be found.
    """
    env = os.environ if environ is None else environ
    explicit_token = env.get(ENV_TOKEN)
    tried: list[str] = []

    if env.get(ENV_URL):
        return ServerInfo(_normalize_url(env[ENV_URL]), explicit_token or "", f"${ENV_URL}")
    tried.append(f"${ENV_URL} is not set")

    hub_token = env.get("JUPYTERHUB_API_TOKEN", "")
    hub_url = env.get("JUPYTERHUB_SERVICE_URL", "")
    hub_markers = [k for k in env if k.startswith("JUPYTERHUB_")]
    if hub_url and (hub_token or explicit_token):
        return ServerInfo(
            _connectable(hub_url), explicit_token or hub_token, "JupyterHub environment"
        )
    if hub_markers:
        missing = [k for k in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN") if not env.get(k)]
        tried.append("JupyterHub environment: " + " and ".join(missing) + " not set")
    else:
        tried.append("no JupyterHub environment")

    parent = env.get("JPY_PARENT_PID", "")
    candidates: list[int] = []
    if parent.isdigit():
        candidates.append(int(parent))
    ancestors = _ancestor_pids()
    candidates += [pid for pid in ancestors if pid not in candidates]
    try:
        runtime_dir, servers = _running_servers()
    except Exception as exc:  # jupyter_server missing or the runtime dir unreadable
        runtime_dir, servers = "?", []
        tried.append(f"listing running servers failed: {exc}")
    by_pid = {int(s["pid"]): s for s in servers if str(s.get("pid", "")).isdigit()}
    for pid in candidates:
        if pid in by_pid:
            info = by_pid[pid]
            token = explicit_token or str(info.get("token") or "") or hub_token
            how = "JPY_PARENT_PID" if str(pid) == parent else "an ancestor process"
            return _from_runtime_info(
                info, token, f"runtime file of server pid {pid} ({how}) in {runtime_dir}"
            )
    running = ", ".join(str(p) for p in sorted(by_pid)) or "none"
    looked_for = f"JPY_PARENT_PID={parent}" if parent else "no JPY_PARENT_PID"
    tried.append(
        f"runtime files (jpserver-<pid>.json) in {runtime_dir}: {looked_for}, "
        f"{len(ancestors)} ancestor process(es); servers running there: {running}"
    )

    if parent or hub_markers:
        raise ServerNotFound(
            "parallelworks-lab: cannot find the Jupyter server of this kernel. Tried: "
            + "; ".join(tried)
            + f". Set ${ENV_URL} (and ${ENV_TOKEN}) to the server's URL, or use "
            "Client(url=..., token=...) or Client.in_process()."
        )
    return None


# -- resource helpers ---------------------------------------------------------------------

_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_MEM_FACTORS = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 * 1024}


def parse_memory(value: Union[str, int]) -> int:
    """Memory in MiB from ``4096``, ``"4096"``, ``"500M"``, ``"4G"``, ``"1T"`` (binary units)."""
    if isinstance(value, int):
        return value
    match = _MEM.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a memory size (e.g. 4096, 500M, 4G)")
    number, unit = float(match.group(1)), match.group(2).upper()
    return max(1, int(-(-number * _MEM_FACTORS[unit] // 1)))


def parse_time(value: Union[str, int]) -> int:
    """Walltime in minutes, from Slurm's forms: ``90``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM``, ``D-HH:MM:SS`` (seconds round up to a minute)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        if not day_text.isdigit():
            raise ValueError(f"'{value}' is not a time limit")
        days = int(day_text)
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"'{value}' is not a time limit")
        hours, minutes, seconds = ([int(p) for p in parts] + [0, 0])[:3]
    else:
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"'{value}' is not a time limit (e.g. 90, 1:30:00, 2-00:00:00)")
        if len(parts) == 1:
            hours, minutes, seconds = 0, int(parts[0]), 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, int(parts[0]), int(parts[1])
        else:
            hours, minutes, seconds = (int(p) for p in parts)
    total = days * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise ValueError(f"'{value}' is shorter than a minute")
    return total


def build_resources(options: Mapping[str, Any]) -> dict[str, Any]:
    """Resource keyword arguments (with the ``mem``/``time`` aliases) as a ResourceRequest dict."""
    resources: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "mem":
            key, value = "memory_mb", value
        elif key == "time":
            key, value = "time_limit_minutes", value
        if key not in RESOURCE_FIELDS:
            known = ", ".join([*RESOURCE_FIELDS, "mem", "time"])
            raise TypeError(f"unknown resource '{key}'; known: {known}")
        try:
            if key == "memory_mb":
                value = parse_memory(value)
            elif key == "time_limit_minutes":
                value = parse_time(value)
        except ValueError as exc:
            raise InvalidRequest.for_field(f"resources.{key}", str(exc)) from None
        resources[key] = value
    return resources


def _resolve_dir(working_dir: Optional[str]) -> str:
    """Relative working dirs resolve against this process's cwd, like sbatch's."""
    if working_dir is None or working_dir == "":
        return os.getcwd()
    if working_dir.startswith("~") or os.path.isabs(working_dir):
        return working_dir
    return os.path.join(os.getcwd(), working_dir)


def python_script(python: str, code: str) -> str:
    """A batch script running ``code`` with the cluster's interpreter.

    The code is written to a temporary file through a quoted here-document, so the shell never
    interprets any of it; the interpreter words are quoted one by one.
    """
    return (
        notebook_job.SCRIPT_HEAD
        + notebook_job.heredoc('"$pwlab_tmp/cell.py"', code)
        + notebook_job.interpreter_words(python)
        + ' "$pwlab_tmp/cell.py"\n'
    )


# -- transports ---------------------------------------------------------------------------

Event = tuple[str, dict[str, Any]]  # ("job", payload) or ("cluster", payload)


class EventStream(Protocol):
    def next(self, timeout: float) -> Optional[Event]:
        """The next event, None after ``timeout`` seconds; ConnectionError when broken."""

    def close(self) -> None: ...


class Transport(Protocol):
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
    def close(self) -> None: ...


def _error_from_response(response: httpx.Response) -> PWLabError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.reason_phrase or "request failed")
    errors = [
        FieldError(str(e.get("field", "")), str(e.get("message", "")))
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    status = response.status_code
    if status == 400:
        return InvalidRequest(message, errors)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status in (401, 403):
        return PWLabError(
            f"the Jupyter server refused the credentials ({status}); check ${ENV_TOKEN}",
            [],
            status,
        )
    return PWLabError(message, errors, status)


class HttpTransport:
    """The REST API of a running Jupyter server."""

    def __init__(self, server: ServerInfo, timeout: float = 30.0) -> None:
        self.server = server
        self.description = f"{server.url} ({server.source})"
        self.link_base: Optional[str] = server.base_path
        self.root_dir: Optional[str] = server.root_dir
        headers = {"Authorization": f"token {server.token}"} if server.token else {}
        transport = httpx.HTTPTransport(uds=server.unix_socket) if server.unix_socket else None
        self._http = httpx.Client(
            base_url=server.url + API_BASE + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"cannot reach the Jupyter server at {self.server.url}: {exc}"
            ) from None
        if response.status_code >= 400:
            raise _error_from_response(response)
        try:
            return response.json()
        except ValueError:
            raise PWLabError(
                f"unexpected answer from {self.server.url} ({response.status_code}); is the "
                "parallelworks_lab server extension enabled?",
                [],
                502,
            ) from None

    def clusters(self) -> list[ClusterSummary]:
        body = self._call("GET", "clusters")
        return [ClusterSummary.model_validate(c) for c in body["clusters"]]

    def cluster(self, cluster_id: str) -> ClusterDetail:
        return ClusterDetail.model_validate(self._call("GET", f"clusters/{_seg(cluster_id)}"))

    def submit(self, request: JobSubmit) -> JobInfo:
        body = request.model_dump(mode="json", exclude_none=True)
        return JobInfo.model_validate(self._call("POST", "jobs", json=body, timeout=120.0))

    def jobs(
        self, cluster: Optional[str], states: list[str], limit: int, cursor: Optional[str]
    ) -> JobPage:
        params: dict[str, Any] = {"limit": limit}
        if cluster:
            params["cluster"] = cluster
        if states:
            params["state"] = ",".join(states)
        if cursor:
            params["cursor"] = cursor
        return JobPage.model_validate(self._call("GET", "jobs", params=params))

    def job(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(self._call("GET", f"jobs/{_seg(job_id)}"))

    def action(self, job_id: str, action: str) -> JobInfo:
        if action == "cancel":
            body = self._call("DELETE", f"jobs/{_seg(job_id)}", timeout=120.0)
        else:
            body = self._call("POST", f"jobs/{_seg(job_id)}/{action}", timeout=120.0)
        return JobInfo.model_validate(body)

    def read_log(self, job_id: str, stream: str, offset: int) -> LogChunk:
        params = {"stream": stream, "offset": offset}
        return LogChunk.model_validate(
            self._call("GET", f"jobs/{_seg(job_id)}/logs", params=params)
        )

    def events(self) -> EventStream:
        return _WebSocketEvents(self.server)

    def close(self) -> None:
        self._http.close()


def _seg(value: str) -> str:
    return quote(value, safe="")


class _WebSocketEvents:
    """Jupyter Server's event bus (``/api/events/subscribe``), filtered to our schemas."""

    def __init__(self, server: ServerInfo) -> None:
        from websockets.sync.client import connect, unix_connect

        parts = urlsplit(server.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        uri = f"{scheme}://{parts.netloc}{parts.path}api/events/subscribe"
        headers = {"Authorization": f"token {server.token}"} if server.token else None
        # Entered as a context manager (websockets >= 17 warns otherwise); closed in close().
        self._stack = contextlib.ExitStack()
        if server.unix_socket:
            connection = unix_connect(server.unix_socket, uri, additional_headers=headers)
        else:
            connection = connect(uri, additional_headers=headers, open_timeout=10)
        self._ws = self._stack.enter_context(connection)

    def next(self, timeout: float) -> Optional[Event]:
        from websockets.exceptions import ConnectionClosed

        try:
            message = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise ConnectionError(str(exc)) from None
        try:
            data = json.loads(message)
        except ValueError:
            return None
        schema = data.pop("schema_id", None) if isinstance(data, dict) else None
        if schema == JOB_SCHEMA_ID:
            return ("job", data)
        if schema == CLUSTER_SCHEMA_ID:
            return ("cluster", data)
        return None

    def close(self) -> None:
        self._stack.close()


# -- the in-process service ---------------------------------------------------------------


def default_db_path() -> Path:
    """The database the server uses by default (same as ``ParallelWorksLabApp.db_path``)."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "parallelworks_lab" / "jobs.sqlite"


def _config_value(section: Any, name: str, default: Any) -> Any:
    if name not in section:
        return default
    value = section[name]
    get_value = getattr(value, "get_value", None)  # traitlets' LazyConfigValue (+=, append)
    if callable(get_value):
        return get_value(default)
    return value


def server_config() -> dict[str, Any]:
    """``ParallelWorksLabApp`` settings from the user's Jupyter server config files.

    Reads ``jupyter_server_config.{json,py}`` and ``jupyter_server_config.d/*.json`` in the
    Jupyter config path (lowest priority first), like ``jupyter server`` does.
    """
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import (
        ConfigFileNotFound,
        JSONFileConfigLoader,
        PyFileConfigLoader,
    )

    merged = Config()
    for directory in reversed(jupyter_config_path()):
        conf_d = Path(directory) / "jupyter_server_config.d"
        if conf_d.is_dir():
            for path in sorted(conf_d.glob("*.json")):
                try:
                    merged.merge(Config(json.loads(path.read_text())))
                except (OSError, ValueError):
                    continue
        loaders = (
            PyFileConfigLoader("jupyter_server_config.py", path=directory),
            JSONFileConfigLoader("jupyter_server_config.json", path=directory),
        )
        for loader in loaders:
            try:
                merged.merge(loader.load_config())
            except ConfigFileNotFound:
                continue
            except Exception as exc:  # a broken file: say so, use the rest
                log.warning("ignoring %s: %s", loader.full_filename or directory, exc)
    section = merged["ParallelWorksLabApp"] if "ParallelWorksLabApp" in merged else Config()
    return {
        name: _config_value(section, name, default)
        for name, default in (
            ("clusters", []),
            ("db_path", ""),
            ("poll_interval", 5.0),
            ("backend_classes", {}),
        )
    }


class _ServiceThread:
    """A JobService running on an event loop in a daemon thread of this process."""

    def __init__(
        self,
        db_path: Path,
        clusters: list[dict[str, Any]],
        backend_classes: dict[str, str],
        root_dir: Path,
        poll_interval: float,
    ) -> None:
        self.db_path = db_path
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="pwlab-service", daemon=True)
        self._thread.start()
        self.service: JobService = self.call(
            self._build(db_path, clusters, backend_classes, root_dir, poll_interval)
        )
        atexit.register(self.close)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @staticmethod
    async def _build(
        db_path: Path,
        clusters: list[dict[str, Any]],
        backend_classes: dict[str, str],
        root_dir: Path,
        poll_interval: float,
    ) -> JobService:
        from .service import DEFAULT_BACKENDS, JobService
        from .store import JobStore

        service = JobService(
            JobStore(db_path),
            clusters=clusters or None,
            backend_classes={**DEFAULT_BACKENDS, **backend_classes},
            state_dir=db_path.parent,
            root_dir=root_dir,
            poll_interval=poll_interval,
        )
        await service.start()
        return service

    def call(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = 300.0) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking call from the service's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def stop() -> None:
            await self.service.stop()
            self.service.store.close()

        try:
            self.call(stop(), timeout=10)
        except Exception:  # noqa: S110 - best effort at exit
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        atexit.unregister(self.close)
        _SERVICES.pop(self.db_path, None)


_SERVICES: dict[Path, _ServiceThread] = {}
_SERVICES_LOCK = threading.Lock()


class _QueueEvents:
    def __init__(self, service: JobService, loop: asyncio.AbstractEventLoop) -> None:
        self._queue: queue.Queue[Event] = queue.Queue()
        self._unsubscribe = service.subscribe(lambda kind, data: self._queue.put((kind, data)))
        self._loop = loop

    def next(self, timeout: float) -> Optional[Event]:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._unsubscribe)


class InProcessTransport:
    """The job service itself, in this process (no Jupyter server around)."""

    link_base: Optional[str] = None

    def __init__(self, runner: _ServiceThread) -> None:
        self._runner = runner
        self.description = f"in-process service on {runner.db_path}"
        self.root_dir: Optional[str] = None

    @classmethod
    def shared(
        cls,
        db_path: Union[str, Path, None] = None,
        clusters: Optional[list[dict[str, Any]]] = None,
        root_dir: Union[str, Path, None] = None,
        poll_interval: Optional[float] = None,
    ) -> InProcessTransport:
        """One service per database per process, however many clients use it."""
        config = server_config()
        path = Path(db_path or config["db_path"] or default_db_path()).expanduser().resolve()
        with _SERVICES_LOCK:
            runner = _SERVICES.get(path)
            if runner is None:
                runner = _ServiceThread(
                    path,
                    list(clusters if clusters is not None else config["clusters"]),
                    dict(config["backend_classes"]),
                    Path(root_dir or os.getcwd()).resolve(),
                    float(poll_interval or config["poll_interval"]),
                )
                _SERVICES[path] = runner
        return cls(runner)

    @property
    def service(self) -> JobService:
        return self._runner.service

    def _sync(self, func: Callable[[], T]) -> T:
        async def run() -> T:
            return func()

        return self._runner.call(run())

    def clusters(self) -> list[ClusterSummary]:
        return self._sync(self.service.list_clusters)

    def cluster(self, cluster_id: str) -> ClusterDetail:
        return self._runner.call(self.service.cluster_detail(cluster_id))

    def submit(self, request: JobSubmit) -> JobInfo:
        return self._runner.call(self.service.submit(request))

    def jobs(
        self, cluster: Optional[str], states: list[str], limit: int, cursor: Optional[str]
    ) -> JobPage:
        return self._sync(
            lambda: self.service.list_jobs(
                cluster=cluster, states=states, limit=limit, cursor=cursor
            )
        )

    def job(self, job_id: str) -> JobInfo:
        return self._sync(lambda: self.service.get_job(job_id))

    def action(self, job_id: str, action: str) -> JobInfo:
        method = {"cancel": self.service.cancel, "hold": self.service.hold}.get(
            action, self.service.release
        )
        return self._runner.call(method(job_id))

    def read_log(self, job_id: str, stream: str, offset: int) -> LogChunk:
        return self._runner.call(self.service.read_log(job_id, stream, offset))

    def events(self) -> EventStream:
        return self._sync(lambda: _QueueEvents(self.service, self._runner.loop))

    def close(self) -> None:
        """The shared service keeps running until the process exits (or ``shutdown()``)."""

    def shutdown(self) -> None:
        self._runner.close()


# -- jobs ---------------------------------------------------------------------------------

STATE_COLOURS = {
    "COMPLETED": "var(--jp-success-color1, #388e3c)",
    "RUNNING": "var(--jp-brand-color1, #1976d2)",
    "COMPLETING": "var(--jp-brand-color1, #1976d2)",
    "QUEUED": "var(--jp-warn-color1, #f57c00)",
    "HELD": "var(--jp-warn-color1, #f57c00)",
    "SUBMITTING": "var(--jp-warn-color1, #f57c00)",
    "SUSPENDED": "var(--jp-warn-color1, #f57c00)",
}
ERROR_COLOUR = "var(--jp-error-color1, #d32f2f)"


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, ERROR_COLOUR if state != "UNKNOWN" else "inherit")
    return (
        f'<span class="jp-pwlab-state" style="color: {colour}; font-weight: 600">'
        f"{html.escape(state)}</span>"
    )


def format_elapsed(delta: Optional[timedelta]) -> str:
    if delta is None:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(value: Optional[datetime]) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class Job:
    """A job: a cached copy of the server's record plus methods to act on it.

    Attributes reflect the last :meth:`refresh` (or event); ``wait``/``follow`` keep it fresh.
    """

    def __init__(self, client: Client, info: JobInfo) -> None:
        self._client = client
        self._info = info
        self.notebook: Optional[str] = None  # set for notebook jobs: the input notebook

    @property
    def client(self) -> Client:
        return self._client

    # -- data ------------------------------------------------------------------------------
    @property
    def info(self) -> JobInfo:
        return self._info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def cluster(self) -> str:
        return self._info.cluster

    @property
    def native_id(self) -> Optional[str]:
        return self._info.native_id

    @property
    def state(self) -> JobState:
        return self._info.state

    @property
    def raw_state(self) -> Optional[str]:
        return self._info.raw_state

    @property
    def reason(self) -> Optional[str]:
        return self._info.reason

    @property
    def exit_code(self) -> Optional[int]:
        return self._info.exit_code

    @property
    def terminal(self) -> bool:
        return self._info.terminal

    @property
    def resources(self) -> ResourceRequest:
        return self._info.resources

    @property
    def submitted_at(self) -> datetime:
        return self._info.submitted_at

    @property
    def started_at(self) -> Optional[datetime]:
        return self._info.started_at

    @property
    def ended_at(self) -> Optional[datetime]:
        return self._info.ended_at

    @property
    def working_dir(self) -> Optional[str]:
        return self._info.working_dir

    @property
    def elapsed(self) -> Optional[timedelta]:
        """Run time so far (or in total once it ended); None before it started."""
        if self.started_at is None:
            return None
        end = self.ended_at or datetime.now(timezone.utc)
        return end - self.started_at

    @property
    def output_notebook(self) -> Optional[str]:
        """For a notebook job: where its executed copy is (``<name>.<native id>.ipynb``)."""
        if self.notebook is None or self.native_id is None:
            return None
        return notebook_job.output_path(self.notebook, self.native_id)

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.COMPLETED

    # -- actions ---------------------------------------------------------------------------
    def refresh(self) -> Job:
        self._info = self._client._transport.job(self.id)
        return self

    def apply_event(self, data: Mapping[str, Any]) -> bool:
        """Update from a job-state event (fields the event carries); True if it changed."""
        if data.get("id") != self.id:
            return False
        fields = {k: v for k, v in data.items() if k in JobInfo.model_fields}
        merged = {**self._info.model_dump(mode="json"), **fields}
        try:
            info = JobInfo.model_validate(merged)
        except ValidationError:
            return False
        changed = info != self._info
        self._info = info
        return changed

    def wait(self, timeout: Optional[float] = None, interval: float = 2.0) -> Job:
        """Block until the job has ended; ``TimeoutError`` after ``timeout`` seconds.

        It asks the Jupyter server (its job store), never the scheduler: quickly at first,
        then every ``interval`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.1
        while not self.refresh().terminal:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {self.state.value} after {timeout}s")
            pause = delay if deadline is None else min(delay, max(0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 1.5, interval)
        return self

    def read_log(self, stream: str = "stdout", offset: int = 0) -> LogChunk:
        """One chunk of a log from ``offset`` (see the REST API's ``/logs``)."""
        return self._client._transport.read_log(self.id, stream, offset)

    def logs(self, stream: str = "stdout") -> str:
        """The whole log written so far (``stdout`` or ``stderr``)."""
        parts: list[str] = []
        offset = 0
        while True:
            chunk = self.read_log(stream, offset)
            parts.append(chunk.data)
            if chunk.eof or chunk.offset == offset:
                return "".join(parts)
            offset = chunk.offset

    def follow(
        self,
        stdout: Optional[IO[str]] = None,
        stderr: Optional[IO[str]] = None,
        interval: float = LOG_POLL_SECONDS,
    ) -> Job:
        """Write the logs to ``stdout``/``stderr`` as they grow, until the job has ended.

        An interrupt (``KeyboardInterrupt``) stops following; the job keeps running.
        """
        outs = {"stdout": stdout or sys.stdout, "stderr": stderr or sys.stderr}
        offsets = {"stdout": 0, "stderr": 0}
        done: set[str] = set()
        while len(done) < len(offsets):
            progressed = False
            for stream in offsets:
                if stream in done:
                    continue
                chunk = self.read_log(stream, offsets[stream])
                if chunk.data:
                    outs[stream].write(chunk.data)
                    outs[stream].flush()
                    progressed = True
                offsets[stream] = chunk.offset
                if chunk.eof:
                    done.add(stream)
            if not progressed and len(done) < len(offsets):
                time.sleep(interval)
        return self.refresh()

    def cancel(self) -> Job:
        self._info = self._client._transport.action(self.id, "cancel")
        return self

    def hold(self) -> Job:
        self._info = self._client._transport.action(self.id, "hold")
        return self

    def release(self) -> Job:
        self._info = self._client._transport.action(self.id, "release")
        return self

    # -- display ---------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: id, name, cluster, state (with reason and exit code when there are)."""
        text = f"job {self.id} '{self.name}' on {self.cluster}: {self.state.value}"
        if self.reason:
            text += f" ({self.reason})"
        if self.exit_code is not None and self.terminal:
            text += f", exit code {self.exit_code}"
        return text

    def __repr__(self) -> str:
        return (
            f"<Job {self.id} {self.name!r} on {self.cluster!r}: {self.state.value}"
            + (f" ({self.reason})" if self.reason else "")
            + ">"
        )

    def _links(self) -> list[tuple[str, str]]:
        base = self._client._transport.link_base
        if base is None:
            return []
        api = f"{base}{API_BASE}/jobs/{_seg(self.id)}"
        links = [
            ("job", api),
            ("stdout", f"{api}/logs?stream=stdout"),
            ("stderr", f"{api}/logs?stream=stderr"),
        ]
        output = self.output_notebook
        root = self._client._transport.root_dir
        if output and root:
            try:
                rel = Path(output).resolve().relative_to(Path(root).resolve())
            except ValueError:
                pass
            else:
                links.append(("executed notebook", f"{base}lab/tree/{quote(rel.as_posix())}"))
        return links

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [
            ("Job", f"<code>{esc(self.id)}</code> {esc(self.name)}"),
            (
                "Cluster",
                esc(self.cluster) + (f" (#{esc(self.native_id)})" if self.native_id else ""),
            ),
            (
                "State",
                state_badge(self.state.value) + (f" — {esc(self.reason)}" if self.reason else ""),
            ),
        ]
        if self.exit_code is not None:
            rows.append(("Exit code", str(self.exit_code)))
        rows.append(("Submitted", esc(format_time(self.submitted_at))))
        if self.started_at:
            rows.append(("Elapsed", esc(format_elapsed(self.elapsed))))
        if self.output_notebook:
            rows.append(("Output", f"<code>{esc(self.output_notebook)}</code>"))
        links = self._links()
        if links:
            rows.append(
                (
                    "Links",
                    " · ".join(
                        f'<a href="{esc(href)}" target="_blank" rel="noopener">{esc(label)}</a>'
                        for label, href in links
                    ),
                )
            )
        body = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{k}</th>'
            f'<td style="text-align:left">{v}</td></tr>'
            for k, v in rows
        )
        return f'<table class="jp-pwlab-job">{body}</table>'


class Jobs(list[Job]):
    """A list of jobs that displays as a table."""

    COLUMNS = ("id", "name", "cluster", "state", "reason", "submitted", "elapsed")

    @staticmethod
    def _cells(job: Job) -> list[str]:
        return [
            job.id,
            job.name,
            job.cluster,
            job.state.value,
            job.reason or "",
            format_time(job.submitted_at),
            format_elapsed(job.elapsed),
        ]

    def __repr__(self) -> str:
        if not self:
            return "(no jobs)"
        rows = [list(self.COLUMNS)] + [self._cells(j) for j in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows
        )

    def _repr_html_(self) -> str:
        return jobs_html(self)


def jobs_html(jobs: Iterable[Job]) -> str:
    esc = html.escape
    head = "".join(f"<th style='text-align:left'>{c}</th>" for c in Jobs.COLUMNS)
    rows = []
    for job in jobs:
        cells = Jobs._cells(job)
        cells_html = [f"<code>{esc(cells[0])}</code>", esc(cells[1]), esc(cells[2])]
        cells_html += [state_badge(cells[3])] + [esc(c) for c in cells[4:]]
        rows.append("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells_html))
    if not rows:
        return "<p>No jobs.</p>"
    return f'<table class="jp-pwlab-jobs"><tr>{head}</tr>{"".join(rows)}</table>'


class Clusters(list[ClusterSummary]):
    """The configured clusters, displayed as a table."""

    def __repr__(self) -> str:
        lines = [f"{c.id}  {c.kind}  {c.status}  {c.description}".rstrip() for c in self]
        return "\n".join(lines) or "(no clusters)"

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(c.id)}</code></td><td>{esc(c.name)}</td><td>{esc(c.kind)}</td>"
            f"<td>{esc(c.status)}{' — ' + esc(c.status_message) if c.status_message else ''}"
            f"</td><td>{esc(c.description)}</td></tr>"
            for c in self
        )
        return (
            '<table class="jp-pwlab-clusters"><tr><th>id</th><th>name</th><th>kind</th>'
            f"<th>status</th><th>description</th></tr>{rows}</table>"
        )


# -- the client ---------------------------------------------------------------------------


class Client:
    """Submit, watch and collect jobs from Python.

    ``Client()`` finds this kernel's Jupyter server (:func:`find_server`); ``Client(url=...,
    token=...)`` names one; :meth:`in_process` runs the service in this process (what
    ``Client()`` does when there is no Jupyter server around at all).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        transport: Optional[Transport] = None,
    ) -> None:
        if transport is None:
            if url:
                info: Optional[ServerInfo] = ServerInfo(
                    _normalize_url(url), token or os.environ.get(ENV_TOKEN, ""), "explicit url"
                )
            else:
                info = find_server()
                if info is not None and token:
                    info = ServerInfo(info.url, token, info.source, info.unix_socket, info.root_dir)
            chosen: Transport
            if info is not None:
                chosen = HttpTransport(info, timeout)
            else:
                chosen = InProcessTransport.shared()
            transport = chosen
        self._transport: Transport = transport
        self._feed: Optional[JobFeed] = None
        self._feed_lock = threading.Lock()
        self._default_cluster: Optional[str] = None

    @classmethod
    def in_process(
        cls,
        db_path: Union[str, Path, None] = None,
        clusters: Optional[list[dict[str, Any]]] = None,
        root_dir: Union[str, Path, None] = None,
        poll_interval: Optional[float] = None,
    ) -> Client:
        """A client on an in-process job service (default: the server's database and config)."""
        return cls(transport=InProcessTransport.shared(db_path, clusters, root_dir, poll_interval))

    @property
    def source(self) -> str:
        """Where this client sends its requests (never shows the token)."""
        return self._transport.description

    @property
    def in_process_mode(self) -> bool:
        return isinstance(self._transport, InProcessTransport)

    def __repr__(self) -> str:
        return f"<parallelworks_lab.Client: {self.source}>"

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clusters ----------------------------------------------------------------------------
    def clusters(self) -> Clusters:
        return Clusters(self._transport.clusters())

    def cluster(self, cluster_id: str) -> ClusterDetail:
        return self._transport.cluster(cluster_id)

    @property
    def default_cluster(self) -> str:
        """The cluster used when none is named: the first one configured."""
        if self._default_cluster is None:
            clusters = self._transport.clusters()
            if not clusters:
                raise InvalidRequest.for_field("cluster", "no cluster is configured")
            self._default_cluster = clusters[0].id
        return self._default_cluster

    def _cluster_summary(self, cluster_id: str) -> ClusterSummary:
        for summary in self._transport.clusters():
            if summary.id == cluster_id:
                return summary
        known = ", ".join(c.id for c in self._transport.clusters())
        raise InvalidRequest.for_field(
            "cluster", f"unknown cluster '{cluster_id}'; configured: {known}"
        )

    # -- jobs --------------------------------------------------------------------------------
    def _wrap(self, info: JobInfo) -> Job:
        return Job(self, info)

    def job(self, job_id: Union[str, Job]) -> Job:
        job_id = job_id.id if isinstance(job_id, Job) else job_id
        return self._wrap(self._transport.job(job_id))

    def jobs(
        self,
        cluster: Optional[str] = None,
        state: Union[str, Sequence[str], None] = None,
        limit: int = 100,
    ) -> Jobs:
        """Jobs, newest first. ``state`` is one state, several, or ``"active"``/``"finished"``."""
        states = _expand_states(state)
        page = self._transport.jobs(cluster, states, limit, None)
        return Jobs(self._wrap(j) for j in page.jobs)

    def submit(
        self,
        script: Optional[str] = None,
        *,
        command: Optional[str] = None,
        cluster: Optional[str] = None,
        name: Optional[str] = None,
        working_dir: Optional[str] = None,
        env: Optional[Mapping[str, Any]] = None,
        after: Union[str, Job, Sequence[Union[str, Job]], None] = None,
        **resources: Any,
    ) -> Job:
        """Submit a batch ``script`` or a ``command`` line; returns the :class:`Job`.

        Resources: ``partition``, ``nodes``, ``ntasks``, ``cpus_per_task``, ``gpus``,
        ``memory_mb`` (or ``mem="4G"``), ``time_limit_minutes`` (or ``time="1:30:00"``),
        ``array``. ``working_dir`` defaults to the current directory (relative paths resolve
        against it, like ``sbatch``); ``after`` lists jobs that must complete first.
        """
        body: dict[str, Any] = {
            "cluster": cluster or self.default_cluster,
            "script": script,
            "command": command,
            "name": name,
            "resources": build_resources(resources),
            "working_dir": _resolve_dir(working_dir),
            "env": {str(k): str(v) for k, v in (env or {}).items()},
            "after": _job_ids(after),
        }
        try:
            request = JobSubmit.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest.from_validation(exc) from None
        try:
            return self._wrap(self._transport.submit(request))
        except InvalidRequest as exc:
            # Our default (this directory) does not exist where the cluster runs jobs (no
            # shared file system): let the cluster use its own default, as if none was given.
            if working_dir is not None or [e.field for e in exc.errors] != ["working_dir"]:
                raise
        request = request.model_copy(update={"working_dir": None})
        return self._wrap(self._transport.submit(request))

    def submit_python(
        self,
        code: str,
        *,
        cluster: Optional[str] = None,
        name: Optional[str] = None,
        **options: Any,
    ) -> Job:
        """Run Python ``code`` on the cluster with its configured interpreter."""
        cluster_id = cluster or self.default_cluster
        python = self._cluster_summary(cluster_id).python
        env = {"PYTHONUNBUFFERED": "1", **(options.pop("env", None) or {})}
        return self.submit(
            python_script(python, code),
            cluster=cluster_id,
            name=name or "python",
            env=env,
            **options,
        )

    def submit_notebook(
        self,
        notebook: Union[str, os.PathLike[str]],
        parameters: Optional[Mapping[str, Any]] = None,
        *,
        cluster: Optional[str] = None,
        kernel: Optional[str] = None,
        name: Optional[str] = None,
        **options: Any,
    ) -> Job:
        """Execute a notebook on the cluster (nbclient) with ``parameters`` injected.

        The executed copy is written beside it as ``<name>.<jobid>.ipynb``
        (:attr:`Job.output_notebook`). The job runs in the notebook's directory.
        """
        try:
            params = notebook_job.check_parameters(parameters or {})
        except ValueError as exc:
            raise InvalidRequest.for_field("parameters", str(exc)) from None
        path = Path(os.path.expanduser(os.fspath(notebook)))
        if not path.is_absolute():
            path = Path(os.getcwd()) / path
        if path.suffix != ".ipynb":
            raise InvalidRequest.for_field("notebook", f"'{notebook}' is not an .ipynb file")
        if not path.is_file():
            raise InvalidRequest.for_field("notebook", f"'{path}' does not exist")
        cluster_id = cluster or self.default_cluster
        python = self._cluster_summary(cluster_id).python
        options.setdefault("working_dir", str(path.parent))
        env = {"PYTHONUNBUFFERED": "1", **(options.pop("env", None) or {})}
        job = self.submit(
            notebook_job.notebook_script(python, str(path), params, kernel),
            cluster=cluster_id,
            name=name or path.stem,
            env=env,
            **options,
        )
        job.notebook = str(path)
        return job

    # -- shared refresh ----------------------------------------------------------------------
    @property
    def feed(self) -> JobFeed:
        """The one event subscription (or periodic refresh) all widgets of this client share."""
        with self._feed_lock:
            if self._feed is None:
                self._feed = JobFeed(self)
            return self._feed


_DEFAULT_CLIENT: Optional[Client] = None
_DEFAULT_LOCK = threading.Lock()


def default_client() -> Client:
    """The client the magics and widgets use unless given one: one per process, so that all
    of them share one connection and one :class:`JobFeed`."""
    global _DEFAULT_CLIENT
    with _DEFAULT_LOCK:
        if _DEFAULT_CLIENT is None:
            _DEFAULT_CLIENT = Client()
        return _DEFAULT_CLIENT


def set_default_client(client: Optional[Client]) -> None:
    """Use ``client`` for the magics and widgets from now on (None: find one again)."""
    global _DEFAULT_CLIENT
    with _DEFAULT_LOCK:
        _DEFAULT_CLIENT = client


def _job_ids(after: Union[str, Job, Sequence[Union[str, Job]], None]) -> list[str]:
    if after is None:
        return []
    if isinstance(after, (str, Job)):
        after = [after]
    ids: list[str] = []
    for item in after:
        if isinstance(item, Job):
            ids.append(item.id)
        else:
            ids += [part.strip() for part in str(item).split(",") if part.strip()]
    return ids


ACTIVE_STATES = [s.value for s in JobState if not s.terminal]
FINISHED_STATES = [s.value for s in JobState if s.terminal]


def _expand_states(state: Union[str, Sequence[str], None]) -> list[str]:
    if state is None:
        return []
    values = [state] if isinstance(state, str) else list(state)
    out: list[str] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.lower() == "active":
                out += ACTIVE_STATES
            elif part.lower() == "finished":
                out += FINISHED_STATES
            elif part:
                out.append(part.upper())
    return out


# -- one shared refresher for all widgets -------------------------------------------------

JobListener = Callable[[dict[str, Any]], None]
TickListener = Callable[[], None]


@dataclass(eq=False)
class Subscription:
    on_job: Optional[JobListener] = None
    on_tick: Optional[TickListener] = None
    feed: Optional[JobFeed] = field(default=None, repr=False)

    def close(self) -> None:
        if self.feed is not None:
            self.feed._remove(self)
            self.feed = None


class JobFeed:
    """One background thread per client that keeps every widget of that client up to date.

    It listens to the server's push events (one WebSocket, whatever the number of widgets); if
    that is not possible it asks the server for the job list once per ``poll_interval``. It
    calls each subscriber's ``on_job`` with every job change and ``on_tick`` every
    ``tick_interval`` seconds (for clocks and log tails). The scheduler is never asked: the
    server's poller does that, once per cluster.
    """

    def __init__(
        self, client: Client, tick_interval: float = 1.0, poll_interval: float = 3.0
    ) -> None:
        self.client = client
        self.tick_interval = tick_interval
        self.poll_interval = poll_interval
        self.mode = "stopped"  # "events", "polling" or "stopped"
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._seen: dict[str, str] = {}
        self.polls = 0  # job-list requests made (tests read it)

    def subscribe(
        self, on_job: Optional[JobListener] = None, on_tick: Optional[TickListener] = None
    ) -> Subscription:
        sub = Subscription(on_job, on_tick, self)
        with self._lock:
            self._subscribers.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="pwlab-feed", daemon=True
                )
                self._thread.start()
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
            if not self._subscribers:
                self._stop.set()
                self._thread = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        with self._lock:
            self._subscribers.clear()
            self._stop.set()
            self._thread = None

    def _dispatch_job(self, data: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            if sub.on_job is not None:
                try:
                    sub.on_job(data)
                except Exception:  # a broken widget must not stop the others
                    log.warning("a job update failed in a widget", exc_info=True)

    def _tick(self) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            if sub.on_tick is not None:
                try:
                    sub.on_tick()
                except Exception as exc:  # e.g. the server is restarting: try next tick
                    log.debug("a widget refresh failed: %s", exc)

    def _resync(self) -> None:
        """One request for the current list; dispatch what changed since last time."""
        self.polls += 1
        page = self.client._transport.jobs(None, [], 200, None)
        for info in page.jobs:
            stamp = info.updated_at.isoformat()
            if self._seen.get(info.id) != stamp:
                self._seen[info.id] = stamp
                self._dispatch_job(info.model_dump(mode="json"))

    def _run(self, stop: threading.Event) -> None:
        stream: Optional[EventStream] = None
        retry_at = 0.0
        last_tick = last_poll = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if stream is None and now >= retry_at:
                    try:
                        stream = self.client._transport.events()
                        self.mode = "events"
                        self._resync()  # events are not replayed: load the state first
                        last_poll = now
                    except Exception:
                        stream = None
                        self.mode = "polling"
                        retry_at = now + 15.0
                if stream is not None:
                    try:
                        event = stream.next(self.tick_interval)
                    except (ConnectionError, OSError):
                        stream = None
                        retry_at = time.monotonic() + 1.0
                        continue
                    if event is not None and event[0] == "job":
                        self._seen[str(event[1].get("id"))] = str(event[1].get("updated_at"))
                        self._dispatch_job(event[1])
                else:
                    stop.wait(self.tick_interval)
                    if time.monotonic() - last_poll >= self.poll_interval:
                        last_poll = time.monotonic()
                        try:
                            self._resync()
                        except PWLabError:
                            pass
                if stop.is_set():
                    break
                if time.monotonic() - last_tick >= self.tick_interval:
                    last_tick = time.monotonic()
                    self._tick()
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: S110 - closing a broken socket
                    pass
            if self._thread is None or self._thread is threading.current_thread():
                self.mode = "stopped"
