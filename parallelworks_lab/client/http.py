"""The REST API of a running Jupyter server, over httpx, and its push events over the
server's event bus WebSocket."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Optional
from urllib.parse import quote, urlsplit

import httpx

from ..errors import Conflict, FieldError, InvalidRequest, NotFound, PWLabError
from ..guidance.models import Suggestion
from ..guidance.templates import Template, TemplateIn
from ..models import ClusterDetail, ClusterSummary, JobSubmit, LogChunk
from ..models import Job as JobInfo
from ..models import JobList as JobPage
from .connection import Event, EventStream
from .discovery import ENV_TOKEN, ServerInfo

API_BASE = "parallelworks-lab"
JOB_SCHEMA_ID = "urn:parallelworks-lab:job-state"
CLUSTER_SCHEMA_ID = "urn:parallelworks-lab:cluster-status"


class ServerUnavailable(PWLabError):
    """The Jupyter server did not answer (network error, server gone)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 503)


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


class HttpConnection:
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
        if response.status_code == 204:
            return None
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

    def suggest(self, request: JobSubmit) -> Suggestion:
        body = request.model_dump(mode="json", exclude_none=True)
        return Suggestion.model_validate(self._call("POST", "suggestions", json=body))

    def templates(self) -> list[Template]:
        body = self._call("GET", "templates")
        return [Template.model_validate(t) for t in body["templates"]]

    def save_template(self, template: TemplateIn) -> Template:
        body = template.model_dump(mode="json", exclude_unset=True)
        return Template.model_validate(self._call("POST", "templates", json=body))

    def delete_template(self, name: str) -> None:
        self._call("DELETE", f"templates/{_seg(name)}")

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
