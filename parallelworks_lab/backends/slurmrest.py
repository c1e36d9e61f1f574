"""The ``slurmrest`` backend: Slurm through its REST API (``slurmrestd``) over httpx, with JWT.

* One pooled :class:`httpx.AsyncClient` per cluster, with timeouts, and retries with backoff on
  connect errors and HTTP 502/503/504 (for reads; a submit is retried only when it never left,
  and the submit token in the job comment settles every other doubt).
* Tokens come from the configuration (a value, a file, or a command such as ``scontrol token``
  run through the cluster's transport). They are refreshed before they expire and once when the
  cluster rejects one; they are never logged, put in an error message or returned.
* The API version is read once from ``/openapi/v3``: the newest one an adapter in
  :mod:`.slurmrest_versions` exists for is used.
* Watching costs one ``GET /jobs`` per interval for all jobs, with ``update_time`` so an
  unchanged queue costs the controller next to nothing.
* Job output is read through the cluster's transport when one is configured; without one the
  job's reason says so and reading the log answers 409 with where the file is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import re
import time
from datetime import datetime, timezone
from typing import Any, ClassVar, Optional, Union

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..errors import ClusterUnreachable, Conflict, CredentialsRejected, InvalidRequest
from ..identity import unix_user
from ..models import Partition
from ..states import TERMINAL_STATES, JobState
from ..transports import (
    LocalTransport,
    LocalTransportSettings,
    Transport,
    TransportError,
    TransportSettings,
    make_transport,
)
from .base import Backend, BackendContext, BackendSettings, JobStatus, SubmitRequest, SubmitResult
from .cli import resolve_working_dir
from .slurm import (
    SBATCH_ERROR_FIELDS,
    UNREACHABLE_MARKERS,
    aggregate,
    count_node,
    expand_pattern,
    new_partition,
    partition_access,
)
from .slurm_states import normalize
from .slurmrest_versions import (
    SUPPORTED_VERSIONS,
    Adapter,
    ApiError,
    JobDescription,
    JobRecord,
    adapter_for,
    expand_array_spec,
    pick_version,
    read_errors,
    served_versions,
)

log = logging.getLogger("parallelworks_lab.slurmrest")

TOKEN_PREFIX = "pwlab:"  # noqa: S105 - a marker in the job comment, not a secret
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
RETRY_STATUSES = frozenset({502, 503, 504})
# How long terminal statuses are remembered after their job left the queue.
ENDED_MEMORY_SECONDS = 3600.0
# At most this many history (slurmdbd) lookups per poll.
HISTORY_LOOKUPS = 20
# A JWT (three base64url parts): scrubbed from anything we repeat from a command's stderr.
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# How slurmctld answers a request whose JWT it does not accept, per operation, on Slurm 22.05:
# reads: "Unspecified error" (-1); submit/cancel: 5005; updates: 1000. Newer slurmrestd: 401.
REJECTION_ERRORS = frozenset(
    {
        (-1, "unspecified error"),
        (5005, "zero bytes were transmitted or received"),
        (1000, "unexpected message received"),
    }
)
# Request keys (in slurmrestd's "Unable to process key" errors) -> our field names.
KEY_FIELDS = {
    "partition": "resources.partition",
    "nodes": "resources.nodes",
    "minimum_nodes": "resources.nodes",
    "maximum_nodes": "resources.nodes",
    "tasks": "resources.ntasks",
    "cpus_per_task": "resources.cpus_per_task",
    "memory_per_node": "resources.memory_mb",
    "time_limit": "resources.time_limit_minutes",
    "gpus": "resources.gpus",
    "tres_per_job": "resources.gpus",
    "array": "resources.array",
    "dependency": "after",
    "current_working_directory": "working_dir",
    "environment": "env",
    "name": "name",
}
NO_TRANSPORT_NOTE = (
    "output not readable from JupyterLab: cluster has no 'transport' configured "
    "(the files stay on the cluster at stdout_path/stderr_path)"
)


class TokenSettings(BaseModel):
    """Where the JWT comes from: exactly one of ``value``, ``file`` or ``command``."""

    model_config = ConfigDict(extra="forbid")

    value: Optional[SecretStr] = Field(default=None, description="The token itself.")
    file: Optional[str] = Field(
        default=None,
        description="A file holding the token (re-read when it is due); '~' is the home of "
        "the account the server runs as.",
    )
    command: Optional[list[str]] = Field(
        default=None,
        min_length=1,
        description="argv printing a token (e.g. scontrol token), run through the transport.",
    )
    refresh_before_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Fetch a new token this long before the current one expires "
        "(at most a quarter of the token's lifetime).",
    )
    lifespan_seconds: Optional[float] = Field(
        default=None,
        gt=0,
        description="Lifetime to assume for tokens that carry no 'exp' claim.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> TokenSettings:
        given = [k for k in ("value", "file", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'value', 'file' or 'command'")
        return self


class SlurmRestSettings(BackendSettings):
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="slurmrestd base URL.")
    user: str = Field(
        # One site-wide entry serves every user: by default each server speaks for its own
        # Unix account (with that account's token), never for a name from the environment.
        default_factory=unix_user,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
        description="Slurm user the token belongs to (X-SLURM-USER-NAME); jobs are this user's. "
        "Default: the Unix account the server runs as.",
    )
    token: TokenSettings
    transport: Optional[TransportSettings] = Field(
        default=None,
        description="Where the token command runs and job output is read; none: no log access.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment for commands run through the transport (e.g. SLURM_CONF).",
    )
    job_env: dict[str, str] = Field(
        default_factory=lambda: {"PATH": DEFAULT_PATH},
        description="Environment every job starts with (a request's env is added to it).",
    )
    working_dir: Optional[str] = Field(
        default=None,
        pattern=r"^/",
        description="Working directory for jobs that name none (default: the transport's home).",
    )
    default_partition: Optional[str] = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The default partition, for API versions that do not tell (v0.0.40+).",
    )
    api_version: Optional[str] = Field(
        default=None,
        pattern=r"^v\d+\.\d+\.\d+$",
        description="Use this API version instead of the newest one served and supported.",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for an answer.")
    connect_timeout: float = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10, description="Retries on connect errors/502-504.")
    retry_backoff: float = Field(default=0.5, ge=0, description="First retry delay (doubles).")
    max_connections: int = Field(default=8, ge=1, le=100)
    verify_tls: Union[bool, str] = Field(
        default=True, description="Check the server certificate (or: path of a CA bundle)."
    )
    full_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Ask for all jobs without update_time at least this often (v0.0.38 safety).",
    )
    update_time_margin: float = Field(
        default=2.0,
        ge=0,
        description="Clock margin for update_time where the server does not give its own time.",
    )


class TokenRejected(CredentialsRejected):
    """The cluster does not accept the token (bad, expired, or for another user)."""

    def __init__(self, cluster: str, detail: str, generation: int) -> None:
        super().__init__(cluster, f"token rejected: {detail}")
        self.generation = generation


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT; {} for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, json.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def scrub(text: str) -> str:
    return _JWT_LIKE.sub("<token>", text)


class TokenSource:
    """The current token, fetched again before it expires and (once) after a rejection."""

    def __init__(self, settings: TokenSettings, user: str, run_command: Any) -> None:
        self.settings = settings
        self.user = user
        self._run_command = run_command
        self._value: Optional[str] = None
        self._expires_at: Optional[float] = None
        self._margin = 0.0
        self._lock = asyncio.Lock()
        #: Incremented on every fetch; a rejection names the generation it saw.
        self.generation = 0
        self.fetches = 0

    @property
    def refreshable(self) -> bool:
        return self.settings.value is None

    @property
    def expires_at(self) -> Optional[float]:
        return self._expires_at

    def _due(self) -> bool:
        if self._value is None:
            return True
        if self._expires_at is None:
            return False
        return time.time() >= self._expires_at - self._margin

    async def get(self) -> tuple[str, int]:
        """The token to send now and its generation."""
        async with self._lock:
            if self._due() and (self._value is None or self.refreshable):
                try:
                    await self._fetch()
                except TokenError as exc:
                    if self._value is None or time.time() >= (self._expires_at or 0):
                        raise
                    # The current token is still good for a little while: use it meanwhile.
                    log.warning("could not get a new token yet: %s", exc)
            assert self._value is not None
            return self._value, self.generation

    async def refresh(self, rejected_generation: int) -> bool:
        """After the cluster rejected the token of ``rejected_generation``: fetch another one.

        True when a token different from the rejected one is now current."""
        async with self._lock:
            if self.generation != rejected_generation:
                return True  # refreshed meanwhile
            if not self.refreshable:
                return False
            old = self._value
            await self._fetch()
            return self._value != old

    async def _fetch(self) -> None:
        s = self.settings
        if s.value is not None:
            value = s.value.get_secret_value()
        elif s.file is not None:
            try:
                value = await asyncio.to_thread(_read_text, s.file)
            except OSError as exc:
                raise TokenError(f"token file '{s.file}' cannot be read: {exc.strerror}") from None
        else:
            assert s.command is not None
            value = await self._run_command(s.command)
        value = value.strip()
        if value.startswith("SLURM_JWT="):
            value = value[len("SLURM_JWT=") :]
        if not value:
            raise TokenError("the token source gave an empty token")
        if any(ch.isspace() for ch in value) or not value.isprintable():
            raise TokenError("the token source gave something that is not a single-line token")
        now = time.time()
        claims = jwt_claims(value)
        owner = claims.get("sun")
        if isinstance(owner, str) and owner != self.user:
            # slurmctld would act as the token's user, whatever X-SLURM-USER-NAME says.
            raise TokenError(f"the token is for Slurm user '{owner}', not '{self.user}'")
        expires = claims.get("exp")
        if isinstance(expires, (int, float)):
            issued = claims.get("iat")
            start = issued if isinstance(issued, (int, float)) and issued <= now else now
            lifetime = max(float(expires) - float(start), 1.0)
            self._expires_at = float(expires)
        elif s.lifespan_seconds is not None:
            lifetime = s.lifespan_seconds
            self._expires_at = now + lifetime
        else:
            lifetime, self._expires_at = 0.0, None
        self._margin = min(s.refresh_before_seconds, lifetime / 4)
        self._value = value
        self.generation += 1
        self.fetches += 1
        if self._expires_at is not None:
            log.debug("token %d fetched, valid for %.0f s", self.generation, self._expires_at - now)
        else:
            log.debug("token %d fetched (no expiry known)", self.generation)


class TokenError(Exception):
    """The token could not be obtained (the message never contains a token)."""


def _read_text(path: str) -> str:
    # "~" is each user's own home: one site-wide entry names every user's token file.
    with open(os.path.expanduser(path), encoding="utf-8") as handle:
        return handle.read()


def _ts(value: Optional[int]) -> Optional[datetime]:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def _estimate(value: Optional[int]) -> Optional[datetime]:
    """A pending job's ``start_time`` is the backfill scheduler's estimate (every API version
    has it in the job record): only a time still ahead counts as one."""
    return _ts(value) if value is not None and value > time.time() else None


class SlurmRestBackend(Backend):
    kind: ClassVar[str] = "slurmrest"
    settings_class = SlurmRestSettings
    settings: SlurmRestSettings
    #: What finished jobs used (MaxRSS, TotalCPU of their steps) is served only by slurmdbd's
    #: ``/slurmdb/`` endpoints; the controller's job records do not carry it (docs/slurmrest.md).
    measures_usage: ClassVar[bool] = False

    def __init__(self, settings: BackendSettings, context: BackendContext) -> None:
        super().__init__(settings, context)
        self.transport: Optional[Transport] = None
        if self.settings.transport is not None:
            self.transport = make_transport(self.settings.transport)
            if isinstance(self.transport, LocalTransport):
                # On the login node itself, relative paths mean the Jupyter root directory.
                self.transport.set_home(self.context.root_dir)
        self._command_runner: Optional[Transport] = None
        self.tokens = TokenSource(self.settings.token, self.settings.user, self._token_from_command)
        if self.settings.token.value is not None:
            # Jupyter prints its whole configuration with --debug: an inline token is in it.
            log.warning(
                "cluster %s: token.value is given inline in the configuration, which "
                "`jupyter lab --debug` prints; use token.file or token.command instead",
                self.context.cluster_id,
            )
        self._client: Optional[httpx.AsyncClient] = None
        self._adapter: Optional[Adapter] = None
        self._paths: set[str] = set()
        self._ready_lock = asyncio.Lock()
        self._jobs_lock = asyncio.Lock()
        self.requests = 0  # HTTP requests sent to slurmrestd
        self.token_commands = 0
        self._records: Optional[list[JobRecord]] = None
        self._since: Optional[int] = None
        self._full_at = 0.0
        self._ended: dict[str, tuple[float, JobStatus]] = {}
        self._cached_answer = False  # the last job list was "no change since" (ours, kept)
        self._gone_ids: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def commands_run(self) -> int:
        return self.requests + self.token_commands

    @property
    def api_version(self) -> Optional[str]:
        return self._adapter.version if self._adapter else None

    async def start(self) -> None:
        """Pick the API version and check the token once, so a bad one shows at start-up."""
        await self._get("ping", retry=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for transport in (self.transport, self._command_runner):
            if transport is not None:
                await transport.close()

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
            f"({_describe(status, data)}); check the cluster's 'token' settings",
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
                    f"{_describe(status, spec)})",
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
                self.context.cluster_id, f"GET {what}: {_describe(status, data)}"
            )
        return data

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self) -> list[Partition]:
        adapter = await self._ready()
        partitions = adapter.parse_partitions(await self._get("partitions"))
        nodes = adapter.parse_nodes(await self._get("nodes"))
        default_name = self.settings.default_partition
        out: dict[str, dict[str, Any]] = {}
        for record in partitions:
            if not record.name:
                continue
            default = record.name == default_name if default_name else bool(record.default)
            out[record.name] = new_partition(
                record.name, default, record.max_time_minutes, record.max_nodes, record.state
            )
            out[record.name].update(
                partition_access(record.accounts, record.deny_accounts, record.qos, record.deny_qos)
            )
        for node in nodes:
            for name in node.partitions:
                if name in out:
                    count_node(
                        out[name],
                        idle=bool(node.idle),
                        cpus=node.cpus,
                        cpus_idle=node.cpus_idle,
                        memory_mb=node.memory_mb,
                        gres=node.gres,
                    )
        return [Partition(**p) for p in out.values()]

    # -- submit ------------------------------------------------------------------------------

    async def _home(self) -> Optional[str]:
        if self.settings.working_dir:
            return self.settings.working_dir
        if self.transport is not None:
            try:
                return await self.transport.home()
            except TransportError as exc:
                raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
        return None

    async def _working_dir(self, working_dir: Optional[str]) -> str:
        if working_dir and working_dir.startswith("/"):
            return working_dir
        home = await self._home()
        if home is None:
            raise InvalidRequest.for_field(
                "working_dir",
                "must be an absolute path on this cluster (it has no 'working_dir' setting "
                "and no transport to find a home directory with)",
            )
        return resolve_working_dir(home, working_dir)

    def job_description(self, request: SubmitRequest, working_dir: str) -> JobDescription:
        """The job from validated fields only; the script is the batch script, untouched."""
        res = request.resources
        # '%' in a path would be read as a filename pattern: '%%' is a literal '%'.
        base = working_dir.replace("%", "%%").rstrip("/")
        # Our id too: two clusters sharing a home directory can hand out the same job number.
        stem = f"pwlab-%A_%a-{request.job_id}" if res.array else f"pwlab-%j-{request.job_id}"
        dependency = None
        if request.after_native_ids:
            dependency = "afterok:" + ":".join(request.after_native_ids)
        return JobDescription(
            name=request.name,
            script=request.script,
            working_dir=working_dir,
            stdout=f"{base}/{stem}.out",
            stderr=f"{base}/{stem}.err",
            comment=f"{TOKEN_PREFIX}{request.submit_token}",
            environment={**self.settings.job_env, **request.env} or {"PATH": DEFAULT_PATH},
            partition=res.partition,
            nodes=res.nodes,
            ntasks=res.ntasks,
            cpus_per_task=res.cpus_per_task,
            gpus=res.gpus,
            memory_mb=res.memory_mb,
            time_limit_minutes=res.time_limit_minutes,
            array=res.array,
            dependency=dependency,
            account=res.account,
            qos=res.qos,
        )

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        adapter = await self._ready()
        working_dir = await self._working_dir(request.working_dir)
        if self.transport is not None:
            try:
                exists = await self.transport.is_dir(working_dir)
            except TransportError as exc:
                raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc
            if not exists:
                raise InvalidRequest.for_field(
                    "working_dir", f"'{working_dir}' is not an existing directory on the cluster"
                )
        job = self.job_description(request, working_dir)
        body = adapter.submit_body(job)
        path = adapter.path("submit")
        try:
            status, data = await self._call("POST", path, body=body, idempotent=False)
        except TokenRejected as exc:
            # Rejected before anything was queued; with a new token, make sure the first try
            # did not get through after all, then send it once more.
            if not await self._refresh_token(exc.generation):
                raise
            found = await self.find_by_token(request.submit_token)
            if found is not None:
                return found
            status, data = await self._call("POST", path, body=body, idempotent=False)
        job_id = adapter.parse_submit(data)
        if status != 200 or job_id is None:
            raise self._submit_error(status, data, request)
        native_id = str(job_id)
        self._since = None  # a change we know of: the next poll asks for the full list
        stdout_path = stderr_path = None
        if not request.resources.array:
            stdout_path = expand_pattern(job.stdout, native_id, native_id, None)
            stderr_path = expand_pattern(job.stderr, native_id, native_id, None)
        return SubmitResult(
            native_id=native_id,
            stdout_path=stdout_path,
            stderr_path=stderr_path,
            working_dir=working_dir,
            state=JobState.QUEUED,
            raw_state="PENDING",
        )

    def _submit_error(self, status: int, data: Any, request: SubmitRequest) -> Exception:
        errors = read_errors(data)
        texts = [str(e) for e in errors] or [f"HTTP {status}"]
        joined = "; ".join(texts)
        if status in RETRY_STATUSES or any(m in joined for m in UNREACHABLE_MARKERS):
            return ClusterUnreachable(self.context.cluster_id, f"submit failed: {joined}")
        if not errors:
            return ClusterUnreachable(
                self.context.cluster_id, f"submit failed: {_describe(status, data)}"
            )
        for error in errors:
            field = _field_of(error)
            if field is None:
                continue
            message = f"Slurm refused the job: {error}"
            if field == "resources.partition" and request.resources.partition:
                message += f" (partition '{request.resources.partition}')"
            return InvalidRequest.for_field(field, message)
        return InvalidRequest.for_field("script", f"Slurm refused the job: {joined}")

    # -- watching ----------------------------------------------------------------------------

    async def _job_records(self, full: bool = False) -> list[JobRecord]:
        """This user's job records: one ``GET /jobs``, with ``update_time`` when we have data."""
        adapter = await self._ready()
        async with self._jobs_lock:
            now = time.time()
            incremental = (
                not full
                and self._records is not None
                and self._since is not None
                and now - self._full_at < self.settings.full_refresh_seconds
            )
            params = {"update_time": self._since} if incremental else None
            status, data = await self._call("GET", adapter.path("jobs"), params=params)
            if status not in (200, 304):
                raise ClusterUnreachable(
                    self.context.cluster_id, f"GET jobs: {_describe(status, data)}"
                )
            answer = adapter.parse_jobs(status, data)
            self._cached_answer = answer.unchanged and self._records is not None
            if self._cached_answer and self._records is not None:
                return self._records
            if not incremental:
                self._full_at = now
            self._records = [
                r for r in answer.records if not r.user_name or r.user_name == self.settings.user
            ]
            if answer.last_update is not None:
                self._since = answer.last_update
            else:
                self._since = int(now - self.settings.update_time_margin)
            return self._records

    def _status(self, record: JobRecord, task: Optional[int]) -> JobStatus:
        reason = record.reason
        state = normalize(record.effective_state, reason)
        terminal = state in TERMINAL_STATES
        waiting = state in (JobState.QUEUED, JobState.HELD, JobState.UNKNOWN)
        if reason is None and self.transport is None:
            reason = NO_TRANSPORT_NOTE
        status = JobStatus(
            state=state,
            raw_state=record.raw_state,
            reason=reason,
            exit_code=record.exit_code if terminal else None,
            started_at=None if waiting else _ts(record.start_time),
            ended_at=_ts(record.end_time) if terminal else None,
            estimated_start=_estimate(record.start_time) if state is JobState.QUEUED else None,
        )
        if record.array_job_id is not None and task is not None:
            array_job = str(record.array_job_id)
            status.parent_native_id = array_job
            status.array_task = str(task)
            job_id = str(record.job_id) if record.array_task_id is not None else array_job
            for path, attr in ((record.stdout, "stdout_path"), (record.stderr, "stderr_path")):
                if path:
                    if not record.paths_expanded:
                        path = expand_pattern(path, job_id, array_job, str(task))
                    setattr(status, attr, path)
        return status

    def _current(self, records: list[JobRecord]) -> dict[str, JobStatus]:
        """Statuses by native id: jobs, array tasks (``A_i``), and pending tasks expanded."""
        statuses: dict[str, JobStatus] = {}
        for record in records:
            if record.array_job_id is None:
                statuses[str(record.job_id)] = self._status(record, None)
            elif record.array_task_id is not None:
                key = f"{record.array_job_id}_{record.array_task_id}"
                statuses[key] = self._status(record, record.array_task_id)
            elif record.array_task_string:
                for task in expand_array_spec(record.array_task_string):
                    statuses[f"{record.array_job_id}_{task}"] = self._status(record, task)
            else:
                statuses[str(record.job_id)] = self._status(record, None)
        return statuses

    def _collect(self, wanted: set[str], records: list[JobRecord]) -> dict[str, JobStatus]:
        """The statuses of ``wanted`` (and of the tasks of wanted array jobs) in ``records``,
        with the ends of jobs seen earlier that have left the list since."""
        current = self._current(records)
        now = time.time()
        for key, status in current.items():
            if status.state in TERMINAL_STATES:
                self._ended[key] = (now, status)
        for key in [k for k, (t, _) in self._ended.items() if now - t > ENDED_MEMORY_SECONDS]:
            del self._ended[key]
        known = {key: status for key, (_, status) in self._ended.items()}
        known.update(current)
        statuses: dict[str, JobStatus] = {}
        tasks_of: dict[str, list[JobStatus]] = {}
        for key, status in known.items():
            parent = status.parent_native_id
            if parent is not None:
                tasks_of.setdefault(parent, []).append(status)
                if parent in wanted or key in wanted:
                    statuses[key] = status
            elif key in wanted:
                statuses[key] = status
        for parent, tasks in tasks_of.items():
            if parent in wanted:
                statuses[parent] = aggregate(tasks)
        return statuses

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        if not native_ids:
            return {}
        wanted = set(native_ids)
        statuses = self._collect(wanted, await self._job_records())
        missing = [n for n in native_ids if n not in statuses]
        if missing and self._cached_answer and not self._gone_ids.issuperset(missing):
            # Before calling a job gone on the word of "no change since": the full list.
            statuses = self._collect(wanted, await self._job_records(full=True))
            missing = [n for n in native_ids if n not in statuses]
        if missing:
            statuses.update(await self._gone(missing))
        return statuses

    async def _gone(self, native_ids: list[str]) -> dict[str, JobStatus]:
        """Jobs no longer in the controller's list: their end from slurmdbd, where it is served.

        Without it their end is unknowable: they become UNKNOWN with a reason (never FAILED)."""
        adapter = await self._ready()
        found: dict[str, JobStatus] = {}
        history = adapter.path("history", "{job_id}") in self._paths
        for native_id in native_ids[:HISTORY_LOOKUPS] if history else []:
            status, data = await self._call("GET", adapter.path("history", native_id))
            record = adapter.parse_history(data) if status == 200 else None
            if record is not None and record.states:
                job_status = self._status(record, None)
                if job_status.state is not JobState.UNKNOWN:
                    found[native_id] = job_status
                    if job_status.state in TERMINAL_STATES:
                        self._ended[native_id] = (time.time(), job_status)
        for native_id in native_ids:
            if native_id not in found:
                self._gone_ids.add(native_id)
                found[native_id] = JobStatus(
                    state=JobState.UNKNOWN,
                    raw_state="UNKNOWN",
                    reason="LeftQueue: the job left the controller's list before its end was "
                    "seen, and no job history (slurmdbd) is available to ask",
                )
        return found

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        comment = f"{TOKEN_PREFIX}{submit_token}"
        for record in await self._job_records(full=True):
            if record.comment != comment:
                continue
            if record.array_job_id is not None:
                return SubmitResult(
                    native_id=str(record.array_job_id), working_dir=record.working_dir
                )
            native = str(record.job_id)
            paths = [
                p if not p or record.paths_expanded else expand_pattern(p, native, native, None)
                for p in (record.stdout, record.stderr)
            ]
            return SubmitResult(
                native_id=native,
                stdout_path=paths[0],
                stderr_path=paths[1],
                working_dir=record.working_dir,
            )
        return None

    # -- control -----------------------------------------------------------------------------

    async def _control(self, method: str, native_id: str, body: Any, action: str) -> None:
        adapter = await self._ready()
        if not re.fullmatch(r"\d+(_\d+)?", native_id):
            raise Conflict(f"{action}: '{native_id}' is not a Slurm job id")
        status, data = await self._call(method, adapter.path("job", native_id), body=body)
        failures = adapter.update_failures(data) if status == 200 else []
        if status == 200 and not failures:
            self._since = None
            return
        detail = "; ".join(failures) or _describe(status, data)
        if status in RETRY_STATUSES or any(m in detail for m in UNREACHABLE_MARKERS):
            raise ClusterUnreachable(self.context.cluster_id, f"{action} failed: {detail}")
        raise Conflict(f"{action} refused by Slurm: {detail}")

    async def cancel(self, native_id: str) -> None:
        await self._control("DELETE", native_id, None, "cancel")

    async def hold(self, native_id: str) -> None:
        adapter = await self._ready()
        await self._control("POST", native_id, adapter.hold_body(True), "hold")

    async def release(self, native_id: str) -> None:
        adapter = await self._ready()
        await self._control("POST", native_id, adapter.hold_body(False), "release")

    async def read_log(self, path: str, offset: int, limit: int) -> bytes:
        if self.transport is None:
            raise Conflict(
                f"cannot read '{path}': cluster '{self.context.cluster_id}' has no transport "
                "configured (slurmrestd does not serve files); add a 'transport' to read job "
                "output from JupyterLab"
            )
        try:
            return await self.transport.read_file(path, offset, limit)
        except TransportError as exc:
            raise ClusterUnreachable(self.context.cluster_id, str(exc)) from exc


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


def _describe(status: int, data: Any) -> str:
    errors = read_errors(data)
    if errors:
        return "; ".join(str(e) for e in errors)
    return f"HTTP {status}"


def _field_of(error: ApiError) -> Optional[str]:
    """The request field a Slurm error is about, if we can tell."""
    text = f"{error.text} {error.description}"
    key = re.search(r'key "([^"]+)"', text)
    if key and key.group(1) in KEY_FIELDS:
        return KEY_FIELDS[key.group(1)]
    if error.number == 2000:  # ESLURM_INVALID_PARTITION_NAME
        return "resources.partition"
    lowered = text.lower()
    for marker, field in SBATCH_ERROR_FIELDS:
        if marker in lowered:
            return field
    return None
