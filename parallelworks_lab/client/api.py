"""The :class:`Client`: submit, watch and collect jobs from Python, and the default client
the magics and widgets share."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import ValidationError

from .. import notebook_job
from ..errors import InvalidRequest
from ..guidance.models import Suggestion
from ..guidance.templates import Template, TemplateIn
from ..models import ClusterDetail, ClusterSummary, JobSubmit
from ..models import Job as JobInfo
from ..states import JobState
from . import many
from .connection import ServerConnection
from .discovery import ENV_TOKEN, ServerInfo, _normalize_url, find_server
from .display import Clusters, Templates
from .feed import JobFeed
from .http import HttpConnection
from .inprocess import InProcessConnection
from .job import Job, Jobs
from .resources import _resolve_dir, build_resources, python_script
from .source import submission_source


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
        connection: Optional[ServerConnection] = None,
    ) -> None:
        if connection is None:
            if url:
                info: Optional[ServerInfo] = ServerInfo(
                    _normalize_url(url), token or os.environ.get(ENV_TOKEN, ""), "explicit url"
                )
            else:
                info = find_server()
                if info is not None and token:
                    info = ServerInfo(info.url, token, info.source, info.unix_socket, info.root_dir)
            if info is not None:
                connection = HttpConnection(info, timeout)
            else:
                connection = InProcessConnection.shared()
        self._connection: ServerConnection = connection
        # Created here but idle: its thread starts with the first widget that subscribes.
        self._feed = JobFeed(connection)
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
        connection = InProcessConnection.shared(db_path, clusters, root_dir, poll_interval)
        return cls(connection=connection)

    @property
    def source(self) -> str:
        """Where this client sends its requests (never shows the token)."""
        return self._connection.description

    @property
    def in_process_mode(self) -> bool:
        return isinstance(self._connection, InProcessConnection)

    def __repr__(self) -> str:
        return f"<parallelworks_lab.Client: {self.source}>"

    def close(self) -> None:
        self._feed.stop()
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clusters ----------------------------------------------------------------------------
    def clusters(self) -> Clusters:
        return Clusters(self._connection.clusters())

    def cluster(self, cluster_id: str) -> ClusterDetail:
        return self._connection.cluster(cluster_id)

    @property
    def default_cluster(self) -> str:
        """The cluster used when none is named: the first one configured."""
        if self._default_cluster is None:
            clusters = self._connection.clusters()
            if not clusters:
                raise InvalidRequest.for_field("cluster", "no cluster is configured")
            self._default_cluster = clusters[0].id
        return self._default_cluster

    def _cluster_summary(self, cluster_id: str) -> ClusterSummary:
        for summary in self._connection.clusters():
            if summary.id == cluster_id:
                return summary
        known = ", ".join(c.id for c in self._connection.clusters())
        raise InvalidRequest.for_field(
            "cluster", f"unknown cluster '{cluster_id}'; configured: {known}"
        )

    # -- jobs --------------------------------------------------------------------------------
    def wrap_job(self, info: JobInfo) -> Job:
        """A :class:`Job` for a record this client received (a list, an event), acting
        through this client."""
        return Job(self._connection, info, self._feed)

    def job(self, job_id: Union[str, Job]) -> Job:
        job_id = job_id.id if isinstance(job_id, Job) else job_id
        return self.wrap_job(self._connection.job(job_id))

    def jobs(
        self,
        cluster: Optional[str] = None,
        state: Union[str, Sequence[str], None] = None,
        limit: int = 100,
    ) -> Jobs:
        """Jobs, newest first. ``state`` is one state, several, or ``"active"``/``"finished"``."""
        states = _expand_states(state)
        page = self._connection.jobs(cluster, states, limit, None)
        return Jobs(self.wrap_job(j) for j in page.jobs)

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
        template: Union[str, Template, None] = None,
        **resources: Any,
    ) -> Job:
        """Submit a batch ``script`` or a ``command`` line; returns the :class:`Job`.

        Resources: ``partition``, ``nodes``, ``ntasks``, ``cpus_per_task``, ``gpus``,
        ``memory_mb`` (or ``mem="4G"``), ``time_limit_minutes`` (or ``time="1:30:00"``),
        ``array``. ``working_dir`` defaults to the current directory (relative paths resolve
        against it, like ``sbatch``); ``after`` lists jobs that must complete first.
        ``template`` (a name from :meth:`templates`) supplies the cluster, resources and
        script or command that the other arguments do not: explicit arguments win.

        From a notebook, the notebook's path and the running cell's id go with the request
        (the job's ``provenance``).
        """
        cluster, script, command, requested = self._with_template(
            template, cluster, script, command, resources
        )
        body: dict[str, Any] = {
            "cluster": cluster or self.default_cluster,
            "script": script,
            "command": command,
            "name": name,
            "resources": requested,
            "working_dir": _resolve_dir(working_dir),
            "env": {str(k): str(v) for k, v in (env or {}).items()},
            "after": _job_ids(after),
            "source": submission_source(self._connection.root_dir),
        }
        try:
            request = JobSubmit.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest.from_validation(exc) from None
        try:
            return self.wrap_job(self._connection.submit(request))
        except InvalidRequest as exc:
            # Our default (this directory) does not exist where the cluster runs jobs (no
            # shared file system): let the cluster use its own default, as if none was given.
            if working_dir is not None or [e.field for e in exc.errors] != ["working_dir"]:
                raise
        request = request.model_copy(update={"working_dir": None})
        return self.wrap_job(self._connection.submit(request))

    def map(
        self,
        command: str,
        items: Sequence[Union[str, int, float]],
        *,
        cluster: Optional[str] = None,
        name: Optional[str] = None,
        at_once: Optional[int] = None,
        **options: Any,
    ) -> Jobs:
        """Run ``command`` once per item, as ONE array job where the cluster has arrays.

        Each run finds its item in ``$PWLAB_ITEM`` (and its 1-based position in
        ``$PWLAB_ITEM_INDEX``), e.g. ``client.map("python3 fit.py --seed $PWLAB_ITEM",
        range(300))``. 300 items are one scheduler call instead of 300 (sites rate-limit a
        user's calls); more than 1,000 items become one array job per 1,000. ``at_once``
        caps how many run at the same time. On a cluster without arrays (``local``) each
        item is a job of its own. Other options are those of :meth:`submit`.
        Returns the submitted jobs (array jobs, whose tasks show up as they start).
        """
        if not items:
            raise InvalidRequest.for_field("items", "give at least one item")
        cluster_id = cluster or self.default_cluster
        detail = self.cluster(cluster_id)
        has_arrays = "array" in detail.options_schema.get("properties", {})
        label = name or command.split()[0].rsplit("/", 1)[-1][:60] or "map"
        jobs: list[Job] = []
        if not has_arrays:
            env = dict(options.pop("env", None) or {})
            for index, item in enumerate(items, 1):
                item_env = {**env, "PWLAB_ITEM": str(item), "PWLAB_ITEM_INDEX": str(index)}
                jobs.append(
                    self.submit(
                        command=command,
                        cluster=cluster_id,
                        name=f"{label}[{index}]",
                        env=item_env,
                        **options,
                    )
                )
            return Jobs(jobs)
        for chunk in many.chunks(items):
            jobs.append(
                self.submit(
                    many.array_script(command, chunk),
                    cluster=cluster_id,
                    name=label,
                    array=many.array_spec(len(chunk), at_once),
                    **options,
                )
            )
        return Jobs(jobs)

    def submit_python(
        self,
        code: str,
        *,
        cluster: Optional[str] = None,
        name: Optional[str] = None,
        template: Union[str, Template, None] = None,
        **options: Any,
    ) -> Job:
        """Run Python ``code`` on the cluster with its configured interpreter (``template``:
        its cluster and resources, as in :meth:`submit`; the code replaces its script)."""
        chosen = self._template(template)
        cluster_id = cluster or (chosen.cluster if chosen else None) or self.default_cluster
        env = {"PYTHONUNBUFFERED": "1", **(options.pop("env", None) or {})}
        return self.submit(
            self.python_script(code, cluster_id),
            cluster=cluster_id,
            name=name or "python",
            env=env,
            template=chosen,
            **options,
        )

    def python_script(self, code: str, cluster: Optional[str] = None) -> str:
        """The batch script :meth:`submit_python` submits for ``code`` on ``cluster``."""
        cluster_id = cluster or self.default_cluster
        return python_script(self._cluster_summary(cluster_id).python, code)

    def submit_notebook(
        self,
        notebook: Union[str, os.PathLike[str]],
        parameters: Optional[Mapping[str, Any]] = None,
        *,
        cluster: Optional[str] = None,
        kernel: Optional[str] = None,
        name: Optional[str] = None,
        template: Union[str, Template, None] = None,
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
        chosen = self._template(template)
        cluster_id = cluster or (chosen.cluster if chosen else None) or self.default_cluster
        python = self._cluster_summary(cluster_id).python
        options.setdefault("working_dir", str(path.parent))
        env = {"PYTHONUNBUFFERED": "1", **(options.pop("env", None) or {})}
        job = self.submit(
            notebook_job.notebook_script(python, str(path), params, kernel),
            cluster=cluster_id,
            name=name or path.stem,
            env=env,
            template=chosen,
            **options,
        )
        job.notebook = str(path)
        return job

    # -- guidance: suggestions and templates ----------------------------------------------------
    def suggest(
        self,
        script: Optional[str] = None,
        *,
        command: Optional[str] = None,
        name: Optional[str] = None,
        cluster: Optional[str] = None,
        template: Union[str, Template, None] = None,
        **resources: Any,
    ) -> Suggestion:
        """What earlier runs of the same script or command (else the same job ``name``) really
        used, with memory and time to ask for (``.resources``) and a sentence (``.message``);
        ``runs == 0`` when there were none. ``resources`` (and ``template``) are what you plan
        to ask for, named in the message. Nothing is changed or submitted."""
        cluster, script, command, requested = self._with_template(
            template, cluster, script, command, resources
        )
        body = {
            "cluster": cluster or self.default_cluster,
            "script": script,
            "command": command,
            "name": name,
            "resources": requested,
        }
        try:
            request = JobSubmit.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest.from_validation(exc) from None
        return self._connection.suggest(request)

    def suggest_python(
        self,
        code: str,
        *,
        cluster: Optional[str] = None,
        template: Union[str, Template, None] = None,
        **options: Any,
    ) -> Suggestion:
        """:meth:`suggest` for the script :meth:`submit_python` would submit for ``code``."""
        chosen = self._template(template)
        cluster_id = cluster or (chosen.cluster if chosen else None) or self.default_cluster
        return self.suggest(
            self.python_script(code, cluster_id), cluster=cluster_id, template=chosen, **options
        )

    def templates(self) -> Templates:
        """The site's templates (read-only) and yours, site first."""
        return Templates(self._connection.templates())

    def template(self, name: str) -> Template:
        """One template by name; ``InvalidRequest`` (field ``template``) naming the others."""
        available = self._connection.templates()
        for template in available:
            if template.name == name:
                return template
        known = ", ".join(repr(t.name) for t in available) or "none"
        raise InvalidRequest.for_field("template", f"unknown template '{name}'; available: {known}")

    def _template(self, template: Union[str, Template, None]) -> Optional[Template]:
        if template is None or isinstance(template, Template):
            return template
        return self.template(template)

    def _with_template(
        self,
        template: Union[str, Template, None],
        cluster: Optional[str],
        script: Optional[str],
        command: Optional[str],
        resources: Mapping[str, Any],
    ) -> tuple[Optional[str], Optional[str], Optional[str], dict[str, Any]]:
        """Cluster, script, command and resources: the template's where none were given."""
        requested = build_resources(resources)
        chosen = self._template(template)
        if chosen is None:
            return cluster, script, command, requested
        if script is None and command is None:
            script, command = chosen.script, chosen.command
        return cluster or chosen.cluster, script, command, {**chosen.resources, **requested}

    def save_template(
        self,
        name: str,
        *,
        description: str = "",
        cluster: Optional[str] = None,
        script: Optional[str] = None,
        command: Optional[str] = None,
        **resources: Any,
    ) -> Template:
        """Save (or replace) one of your templates: resources (``mem="4G"``, ``time=90``, ...
        as for :meth:`submit`) and optionally the cluster and a script or command. It is
        checked against the cluster's limits like a submission."""
        body: dict[str, Any] = {"name": name, "resources": build_resources(resources)}
        if description:
            body["description"] = description
        for key, value in (("cluster", cluster), ("script", script), ("command", command)):
            if value is not None:
                body[key] = value
        try:
            template = TemplateIn.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest.from_validation(exc) from None
        return self._connection.save_template(template)

    def delete_template(self, name: str) -> None:
        """Delete one of your templates (site templates are read-only: ``Conflict``)."""
        self._connection.delete_template(name)

    # -- shared refresh ----------------------------------------------------------------------
    @property
    def feed(self) -> JobFeed:
        """The one event subscription (or periodic refresh) all widgets of this client share."""
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
