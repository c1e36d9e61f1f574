"""The HTTP exchange with slurmrestd: one pooled client per cluster, the JWT on every request
(replaced and retried once when the cluster rejects it), retries with backoff on connect errors
and 502-504, and the API version this slurmrestd serves, picked once.

:class:`SlurmRestClient` is the part of the ``slurmrest`` backend that speaks HTTP; the backend
(``slurmrest.py``) builds requests from jobs and reads jobs from answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Optional

import httpx

from ..errors import ClusterUnreachable
from ..transports import LocalTransport, LocalTransportSettings, Transport, TransportError
from .base import BackendContext
from .slurmrest_records import read_errors
from .slurmrest_settings import SlurmRestSettings
from .slurmrest_token import TokenError, TokenRejected, TokenSource, scrub
from .slurmrest_versions import (
    SUPPORTED_VERSIONS,
    Adapter,
    adapter_for,
    pick_version,
    served_versions,
)

log = logging.getLogger("parallelworks_lab.slurmrest")

RETRY_STATUSES = frozenset({502, 503, 504})
# How slurmctld answers a request whose JWT it does not accept, per operation, on Slurm 22.05:
# reads: "Unspecified error" (-1); submit/cancel: 5005; updates: 1000. Newer slurmrestd: 401.
REJECTION_ERRORS = frozenset(
    {
        (-1, "unspecified error"),
        (5005, "zero bytes were transmitted or received"),
        (1000, "unexpected message received"),
    }
)


def _rejected(status: int, data: Any) -> bool:
    """Does this answer mean "your token is not accepted"?"""
    if status in (401, 403):
        return True
    if status != 500:
        return False
    errors = read_errors(data)
    return bool(errors) and all(
        (e.number, e.text.strip().lower()) in REJECTION_ERRORS for e in errors
    )


def describe(status: int, data: Any) -> str:
    errors = read_errors(data)
    if errors:
        return "; ".join(str(e) for e in errors)
    return f"HTTP {status}"


class SlurmRestClient:
    """Requests to one cluster's slurmrestd (a base of the backend, which sets these up)."""

    settings: SlurmRestSettings
    context: BackendContext
    transport: Optional[Transport]
    tokens: TokenSource
    requests: int  # HTTP requests sent to slurmrestd
    token_commands: int
    _command_runner: Optional[Transport]
    _client: Optional[httpx.AsyncClient]
    _adapter: Optional[Adapter]
    _paths: set[str]
    _ready_lock: asyncio.Lock

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = httpx.AsyncClient(
                base_url=s.url.rstrip("/"),
                timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout),
                limits=httpx.Limits(
                    max_connections=s.max_connections, max_keepalive_connections=s.max_connections
                ),
                verify=s.verify_tls,
                headers={"Accept": "application/json"},
                follow_redirects=False,
            )
        return self._client

    # -- tokens ------------------------------------------------------------------------------

    async def _token_from_command(self, argv: list[str]) -> str:
        runner = self.transport
        if runner is None:
            if self._command_runner is None:
                self._command_runner = LocalTransport(LocalTransportSettings())
            runner = self._command_runner
        self.token_commands += 1
        try:
            result = await runner.run(argv, env=self.settings.env, timeout=self.settings.timeout)
        except TransportError as exc:
            raise TokenError(f"token command '{argv[0]}' could not run: {exc}") from None
        if result.returncode != 0:
            lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
            why = scrub(lines[-1]) if lines else "no error output"
            raise TokenError(f"token command '{argv[0]}' failed (exit {result.returncode}): {why}")
        lines = [ln.strip() for ln in result.stdout.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    async def _token(self) -> tuple[str, int]:
        try:
            return await self.tokens.get()
        except TokenError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from None

    async def _refresh_token(self, generation: int) -> bool:
        try:
            return await self.tokens.refresh(generation)
        except TokenError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from None

    # -- HTTP --------------------------------------------------------------------------------

    async def _exchange(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Optional[dict[str, Any]] = None,
        body: Any = None,
        retry: bool = True,
        idempotent: bool = True,
    ) -> tuple[int, Any]:
        """One request, retried with backoff on connect errors (and 502-504 when idempotent)."""
        s = self.settings
        client = self._http()
        headers = {"X-SLURM-USER-NAME": s.user, "X-SLURM-USER-TOKEN": token}
        attempts = 1 + (s.retries if retry else 0)
        problem = "no answer"
        for attempt in range(attempts):
            if attempt:
                delay = s.retry_backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
            self.requests += 1
            try:
                response = await client.request(
                    method, path, params=params, json=body, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem = f"cannot connect to {s.url}: {str(exc) or type(exc).__name__}"
                continue
            except httpx.TimeoutException:
                raise ClusterUnreachable(
                    self.context.cluster_id, f"slurmrestd did not answer within {s.timeout:.0f} s"
                ) from None
            except httpx.HTTPError as exc:
                problem = f"request to {s.url} failed: {str(exc) or type(exc).__name__}"
                if idempotent:
                    continue
                raise ClusterUnreachable(self.context.cluster_id, problem) from None
            if response.status_code in RETRY_STATUSES and idempotent:
                problem = f"slurmrestd answered HTTP {response.status_code}"
                continue
            try:
                data = response.json() if response.content else None
            except ValueError:
                data = None
            return response.status_code, data
        raise ClusterUnreachable(self.context.cluster_id, problem)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Optional[dict[str, Any]] = None,
        body: Any = None,
        retry: bool = True,
        idempotent: bool = True,
    ) -> tuple[int, Any]:
        """A request with the current token; a rejected token is replaced and retried once
        (idempotent requests only: a submit handles that itself)."""
        token, generation = await self._token()
        status, data = await self._exchange(
            method, path, token, params=params, body=body, retry=retry, idempotent=idempotent
        )
        if not _rejected(status, data):
            return status, data
        if idempotent and await self._refresh_token(generation):
            log.info("cluster %s rejected its token; trying a new one", self.context.cluster_id)
            token, generation = await self._token()
            status, data = await self._exchange(
                method, path, token, params=params, body=body, retry=retry
            )
            if not _rejected(status, data):
                return status, data
        raise TokenRejected(
            self.context.cluster_id,
            f"the cluster did not accept the JWT for user '{self.settings.user}' "
            f"({describe(status, data)}); check the cluster's 'token' settings",
            generation,
        )

    async def _ready(self, retry: bool = True) -> Adapter:
        """The adapter for the API version this slurmrestd serves (asked once)."""
        if self._adapter is not None:
            return self._adapter
        async with self._ready_lock:
            if self._adapter is not None:
                return self._adapter
            status, spec = await self._call("GET", "/openapi/v3", retry=retry)
            if status != 200 or not isinstance(spec, dict):
                raise ClusterUnreachable(
                    self.context.cluster_id,
                    f"slurmrestd did not give its API description (/openapi/v3: "
                    f"{describe(status, spec)})",
                )
            served = served_versions(spec)
            version = pick_version(served, self.settings.api_version)
            if version is None:
                wanted = self.settings.api_version or ", ".join(SUPPORTED_VERSIONS)
                raise ClusterUnreachable(
                    self.context.cluster_id,
                    f"slurmrestd serves {', '.join(served) or 'no Slurm API'}; "
                    f"this backend needs one of {wanted}",
                )
            self._paths = set(spec.get("paths") or {})
            self._adapter = adapter_for(version)
            log.info("cluster %s: slurmrestd API %s", self.context.cluster_id, version)
            return self._adapter

    async def _get(
        self, what: str, *, params: Optional[dict[str, Any]] = None, retry: bool = True
    ) -> Any:
        adapter = await self._ready(retry=retry)
        status, data = await self._call("GET", adapter.path(what), params=params, retry=retry)
        if status != 200:
            raise ClusterUnreachable(
                self.context.cluster_id, f"GET {what}: {describe(status, data)}"
            )
        return data
