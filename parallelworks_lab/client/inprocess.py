"""The fallback without a Jupyter server: the job service itself, on an event loop in a
daemon thread of this process, configured from the user's Jupyter server config files."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import queue
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from ..guidance.models import Suggestion
from ..guidance.templates import Template, TemplateIn
from ..models import ClusterDetail, ClusterSummary, JobSubmit, LogChunk
from ..models import Job as JobInfo
from ..models import JobList as JobPage
from .connection import Event, EventStream

if TYPE_CHECKING:
    from ..service import JobService

T = TypeVar("T")
log = logging.getLogger("parallelworks_lab.client")


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
            ("templates_dir", ""),
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
        templates_dir: Optional[Path] = None,
    ) -> None:
        self.db_path = db_path
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="pwlab-service", daemon=True)
        self._thread.start()
        self.service: JobService = self.call(
            self._build(db_path, clusters, backend_classes, root_dir, poll_interval, templates_dir)
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
        templates_dir: Optional[Path],
    ) -> JobService:
        from ..service import DEFAULT_BACKENDS, JobService
        from ..store import JobStore

        service = JobService(
            JobStore(db_path),
            clusters=clusters or None,
            backend_classes={**DEFAULT_BACKENDS, **backend_classes},
            state_dir=db_path.parent,
            root_dir=root_dir,
            poll_interval=poll_interval,
            templates_dir=templates_dir,
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


class InProcessConnection:
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
    ) -> InProcessConnection:
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
                    Path(config["templates_dir"]).expanduser() if config["templates_dir"] else None,
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
        return self._runner.call(self.service.job_detail(job_id))

    def action(self, job_id: str, action: str) -> JobInfo:
        method = {"cancel": self.service.cancel, "hold": self.service.hold}.get(
            action, self.service.release
        )
        return self._runner.call(method(job_id))

    def read_log(self, job_id: str, stream: str, offset: int) -> LogChunk:
        return self._runner.call(self.service.read_log(job_id, stream, offset))

    def events(self) -> EventStream:
        return self._sync(lambda: _QueueEvents(self.service, self._runner.loop))

    def suggest(self, request: JobSubmit) -> Suggestion:
        return self._sync(lambda: self.service.suggest(request))

    def templates(self) -> list[Template]:
        return self._sync(self.service.list_templates)

    def save_template(self, template: TemplateIn) -> Template:
        return self._runner.call(self.service.save_template(template))

    def delete_template(self, name: str) -> None:
        self._sync(lambda: self.service.delete_template(name))

    def close(self) -> None:
        """The shared service keeps running until the process exits (or ``shutdown()``)."""

    def shutdown(self) -> None:
        self._runner.close()
