"""A small client for the Parallel Works ACTIVATE REST API (httpx), limited to what we use.

Authentication is the account's API key (``pwt_<base64url(host)>.<secret>``) sent as HTTP Basic
(``base64("<key>:")``). The key lives only in the client's ``Authorization`` header: it is never
logged, never part of an error message and never returned by our API.

Shapes follow the models of the published ``parallelworks-client`` package (7.122.0); only the
fields we read are modelled here, and unknown fields are ignored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections import Counter
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import __version__

API_KEY_PREFIX = "pwt_"
ENV_API_KEY = "PW_API_KEY"
ENV_PLATFORM_HOST = "PW_PLATFORM_HOST"
RETRY_DELAYS = (0.5, 1.5)


class PlatformError(Exception):
    """The platform answered with an error (``status`` is its HTTP status, 0 for none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PlatformAuthError(PlatformError):
    """401: the API key was rejected (403, "not allowed", is a plain PlatformError)."""


class PlatformUnreachable(PlatformError):
    """No answer: connection refused, timeout, or a 5xx after retries."""


class CredentialError(ValueError):
    """The API key or platform host is missing or malformed (the message never holds the key)."""


# -- credentials ------------------------------------------------------------------------------


def host_from_api_key(api_key: str) -> str:
    """The platform host encoded in a ``pwt_<base64url(host)>.<secret>`` key."""
    if not api_key.startswith(API_KEY_PREFIX) or "." not in api_key:
        raise CredentialError("the API key is not of the form pwt_<host>.<secret>")
    encoded = api_key[len(API_KEY_PREFIX) :].split(".", 1)[0]
    try:
        host = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CredentialError("the API key does not name a platform host") from None
    if not host or any(c.isspace() for c in host):
        raise CredentialError("the API key does not name a platform host")
    return host


def base_url_for(host: str) -> str:
    host = host.strip().rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"https://{host}"


def resolve_credentials(
    api_key: Optional[str], api_key_file: Optional[str], platform_host: Optional[str]
) -> tuple[str, str]:
    """(api_key, base_url) from the config, a key file or ``PW_API_KEY`` / ``PW_PLATFORM_HOST``."""
    key = api_key
    if not key and api_key_file:
        path = Path(api_key_file).expanduser()
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise CredentialError(f"cannot read api_key_file {path}: {exc.strerror}") from None
    if not key:
        key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        raise CredentialError(
            f"no API key: set api_key or api_key_file in the cluster entry, or {ENV_API_KEY}"
        )
    host = platform_host or os.environ.get(ENV_PLATFORM_HOST, "").strip() or None
    if host is None:
        host = host_from_api_key(key)
    return key, base_url_for(host)


# -- response models (the fields we use of parallelworks-client's models) ----------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PlatformCluster(_Model):
    """``GeneralCluster``."""

    id: str
    name: str
    status: str
    type: str = ""
    user: Optional[str] = None
    display_name: Optional[str] = Field(default=None, alias="displayName")
    description: Optional[str] = None
    ip_address: str = Field(default="", alias="ipAddress")
    connection_string: Optional[str] = Field(default=None, alias="connectionString")
    should_platform_proxy: bool = Field(default=False, alias="shouldPlatformProxy")
    ssh_host_keys: Optional[list[str]] = Field(default=None, alias="sshHostKeys")
    scheduler_type: Optional[str] = Field(default=None, alias="schedulerType")
    status_description: Optional[str] = Field(default=None, alias="statusDescription")


class PlatformJob(_Model):
    """``SchedulerJob`` (``GET /api/scheduler-jobs``)."""

    cluster: str
    id: int
    name: str = ""
    partition: str = ""
    state: Optional[list[str]] = None
    user: str = ""


class PlatformQueue(_Model):
    """``SchedulerPartitionData``."""

    name: str
    state: str = ""
    total_nodes: int = Field(default=0, alias="totalNodes")
    idle_nodes: int = Field(default=0, alias="idleNodes")
    alloc_nodes: int = Field(default=0, alias="allocNodes")
    other_nodes: int = Field(default=0, alias="otherNodes")
    max_time: Optional[str] = Field(default=None, alias="maxTime")
    allow_accounts: Optional[list[str]] = Field(default=None, alias="allowAccounts")
    allow_qos: Optional[list[str]] = Field(default=None, alias="allowQos")
    deny_accounts: Optional[list[str]] = Field(default=None, alias="denyAccounts")


class _QueuesResponse(_Model):
    """``SchedulerQueuesResponse``."""

    scheduler_type: str = Field(default="", alias="schedulerType")
    error: Optional[str] = None
    queues: Optional[list[PlatformQueue]] = None


class _CommandResponse(_Model):
    """``SchedulerCommandResponse``."""

    success: bool
    error: Optional[str] = None
    message: Optional[str] = None


def _error_text(response: httpx.Response) -> str:
    """The platform's message: its ``Error`` envelope or RFC 9457 problem details."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "title", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


class PlatformClient:
    """One pooled connection to the platform, with timeouts and retries for reads."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = 15.0,
        retries: int = len(RETRY_DELAYS),
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        token = base64.b64encode(f"{api_key}:".encode()).decode()
        self.base_url = base_url
        self._retries = retries
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Basic {token}",
                "Accept": "application/json",
                "User-Agent": f"parallelworks-lab/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )
        #: requests made, by "METHOD path-template" (tests and benchmarks read it)
        self.requests: Counter[str] = Counter()
        self._organization: Optional[str] = None

    async def close(self) -> None:
        await self._client.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        label: str,
        json: Any = None,
        params: Optional[dict[str, str]] = None,
    ) -> httpx.Response:
        # Reads are retried on no answer and on 5xx; a command only when it never left us.
        attempts = 1 + (self._retries if method == "GET" else 0)
        attempt = 0
        last = ""
        while attempt < attempts:
            if attempt:
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
            attempt += 1
            self.requests[label] += 1
            try:
                response = await self._client.request(method, path, json=json, params=params)
            except httpx.ConnectError as exc:
                last = f"cannot connect to {self.base_url}: {_reason(exc)}"
                if method != "GET" and attempt == 1 and self._retries:
                    attempts = 2  # the request never reached the platform: safe to retry once
                continue
            except httpx.TimeoutException:
                last = f"{self.base_url} did not answer in time"
                continue
            except httpx.HTTPError as exc:
                last = f"{self.base_url}: {_reason(exc)}"
                continue
            if response.status_code == 401:
                raise PlatformAuthError(
                    f"API key rejected by {self.base_url} (HTTP 401: {_error_text(response)})",
                    401,
                )
            if response.status_code == 403:
                raise PlatformError(f"not allowed: {_error_text(response)}", 403)
            if response.status_code >= 500:
                last = f"{self.base_url} answered HTTP {response.status_code}: " + _error_text(
                    response
                )
                continue
            if response.status_code >= 400:
                raise PlatformError(_error_text(response), response.status_code)
            return response
        raise PlatformUnreachable(f"platform unreachable: {last}")

    async def _json(self, path: str, label: str, params: Optional[dict[str, str]] = None) -> Any:
        response = await self._request("GET", path, label=label, params=params)
        try:
            return response.json()
        except ValueError:
            raise PlatformError(f"{label}: the platform's answer is not JSON", 502) from None

    # -- operations ------------------------------------------------------------------------------

    async def organization(self) -> str:
        """``GET /api/auth/whoami/organization`` (cached)."""
        if self._organization is None:
            value = await self._json("/api/auth/whoami/organization", "whoami/organization")
            if not isinstance(value, str) or not value:
                raise PlatformError("the platform did not name the account's organization", 502)
            self._organization = value
        return self._organization

    async def clusters(self) -> list[PlatformCluster]:
        """``GET /api/clusters``: every cluster this account can use."""
        return _parse_list(await self._json("/api/clusters", "clusters"), PlatformCluster)

    async def scheduler_jobs(self) -> list[PlatformJob]:
        """``GET /api/scheduler-jobs``: the jobs of all clusters, from the agents' caches."""
        return _parse_list(await self._json("/api/scheduler-jobs", "scheduler-jobs"), PlatformJob)

    async def scheduler_queues(self, user: str, cluster: str) -> list[PlatformQueue]:
        path = await self._cluster_path(user, cluster, "scheduler-queues")
        body = await self._json(path, "scheduler-queues")
        try:
            parsed = _QueuesResponse.model_validate(body)
        except ValidationError as exc:
            raise PlatformError(f"unexpected scheduler-queues answer: {_first(exc)}", 502) from None
        if parsed.error:
            raise PlatformError(f"the cluster's agent reported: {parsed.error}", 502)
        return parsed.queues or []

    async def job_command(self, user: str, cluster: str, job_id: str, action: str) -> None:
        """``POST …/scheduler-jobs/{id}/command`` with ``{"action": cancel|hold|release}``."""
        path = await self._cluster_path(user, cluster, f"scheduler-jobs/{quote(job_id, safe='')}")
        response = await self._request(
            "POST", f"{path}/command", label="scheduler-jobs/command", json={"action": action}
        )
        try:
            parsed = _CommandResponse.model_validate(response.json())
        except (ValueError, ValidationError):
            raise PlatformError("unexpected answer to the scheduler command", 502) from None
        if not parsed.success:
            raise PlatformError(parsed.error or parsed.message or f"{action} failed", 409)

    async def cluster_action(self, user: str, cluster: str, action: str) -> None:
        """``POST …/clusters/{name}/resume`` or ``/provision`` (204)."""
        path = await self._cluster_path(user, cluster, action)
        await self._request("POST", path, label=f"clusters/{action}")

    async def _cluster_path(self, user: str, cluster: str, tail: str) -> str:
        org = await self.organization()
        return (
            f"/api/organizations/{quote(org, safe='')}/users/{quote(user, safe='')}"
            f"/clusters/{quote(cluster, safe='')}/{tail}"
        )


def _parse_list(body: Any, model: type[Any]) -> list[Any]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise PlatformError(f"expected a list from the platform, got {type(body).__name__}", 502)
    items = []
    for item in body:
        try:
            items.append(model.model_validate(item))
        except ValidationError as exc:
            raise PlatformError(f"unexpected item from the platform: {_first(exc)}", 502) from None
    return items


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
