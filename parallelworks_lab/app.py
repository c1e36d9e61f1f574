"""The Jupyter Server extension: configuration, the JobService, handlers and push events."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Dict, Float, List, Unicode

from .clusters import DEFAULT_CLUSTERS
from .handlers import HANDLERS
from .privacy import describe_changes, private_dir, tighten
from .service import CLUSTER_EVENT, DEFAULT_BACKENDS, JOB_EVENT, JobService
from .store import JobStore, journals
from .store_schema import StoreVersionError

EVENTS_DIR = Path(__file__).parent / "events"
JOB_SCHEMA_ID = "urn:parallelworks-lab:job-state"
CLUSTER_SCHEMA_ID = "urn:parallelworks-lab:cluster-status"


class ParallelWorksLabApp(ExtensionApp):
    name = "parallelworks_lab"
    service: Optional[JobService] = None

    clusters = List(
        Dict(),
        default_value=[],
        help="""Clusters to offer. Each entry has `id`, `kind` (e.g. "local", "slurm") and
        kind-specific settings. With none configured, a built-in `local` cluster runs jobs on
        this machine.""",
    ).tag(config=True)

    extra_clusters = List(
        Dict(),
        default_value=[],
        help="""Clusters added after `clusters`, in the same form. At a site the administrator
        sets `clusters` once for everyone; a user adds their own here (in ~/.jupyter) without
        copying, or hiding, the site's list. An id used twice is an error at start-up.""",
    ).tag(config=True)

    poll_interval = Float(
        5.0, help="Seconds between scheduler queries (one per cluster for all its jobs)."
    ).tag(config=True)

    db_path = Unicode(
        "",
        help="SQLite file holding the job list (default: parallelworks_lab/jobs.sqlite under "
        "the Jupyter data directory).",
    ).tag(config=True)

    templates_dir = Unicode(
        "",
        help="Folder of site templates (JSON or YAML, one per file) offered to every user, "
        "read-only. Users' own templates live in their data folder.",
    ).tag(config=True)

    backend_classes = Dict(
        default_value=dict(DEFAULT_BACKENDS),
        help="Backend class per cluster kind, as import paths; a site can add or swap one.",
    ).tag(config=True)

    def _db_file(self) -> Path:
        if self.db_path:
            return Path(self.db_path).expanduser()
        return Path(jupyter_data_dir()) / "parallelworks_lab" / "jobs.sqlite"

    def _make_private(self, db_file: Path) -> None:
        """Tighten an existing install (never loosen, never delete), with one log line."""
        state_dir = db_file.parent
        roots = [db_file, *journals(db_file)]
        if not self.db_path:
            roots.append(state_dir)  # our own folder; a configured db_path's folder is the user's
        changed = tighten(roots, recursive=[state_dir / "clusters", state_dir / "templates"])
        if changed:
            self.log.warning(
                "parallelworks-lab: made %d file(s)/folder(s) private to you (they were readable "
                "by other accounts): %s",
                len(changed),
                describe_changes(changed),
            )

    def initialize_settings(self) -> None:
        db_file = self._db_file()
        if not self.db_path:
            private_dir(db_file.parent)
        self._make_private(db_file)
        try:
            store = JobStore(db_file)
        except StoreVersionError as exc:
            # Refuse, untouched: every route answers 503 with this message.
            self.log.error("parallelworks-lab is disabled: %s", exc)
            self.settings["parallelworks_lab_unavailable"] = str(exc)
            self.service = None
            return
        root_dir = Path(getattr(self.serverapp, "root_dir", ".") or ".").expanduser()
        self.service = JobService(
            store,
            clusters=[*(self.clusters or DEFAULT_CLUSTERS), *self.extra_clusters],
            backend_classes={**DEFAULT_BACKENDS, **self.backend_classes},
            state_dir=db_file.parent,
            root_dir=root_dir.resolve(),
            poll_interval=self.poll_interval,
            log=self.log,
            templates_dir=Path(self.templates_dir).expanduser() if self.templates_dir else None,
        )
        self.settings["parallelworks_lab_service"] = self.service
        self._register_events()
        self.log.info(
            "parallelworks-lab: %d cluster(s) (%s), jobs in %s",
            len(self.service.clusters),
            ", ".join(self.service.clusters),
            db_file,
        )

    def _register_events(self) -> None:
        event_logger = getattr(self.serverapp, "event_logger", None)
        service = self.service
        if event_logger is None or service is None:
            return
        for schema in ("job-state.yaml", "cluster-status.yaml"):
            try:
                event_logger.register_event_schema(EVENTS_DIR / schema)
            except Exception as exc:  # already registered by an earlier app in this process
                self.log.debug("event schema %s not registered: %s", schema, exc)
        schema_ids = {JOB_EVENT: JOB_SCHEMA_ID, CLUSTER_EVENT: CLUSTER_SCHEMA_ID}
        loop = IOLoop.current()

        def emit(kind: str, payload: dict[str, Any]) -> None:
            # Emitting must happen on the server's loop (the event bus needs it).
            loop.add_callback(event_logger.emit, schema_id=schema_ids[kind], data=payload)

        service.subscribe(emit)

    def initialize_handlers(self) -> None:
        self.handlers.extend(HANDLERS)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.service is not None:
            await self.service.start()

    async def stop_extension(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service.store.close()
