"""What a ``slurmrest`` cluster's configuration holds: the slurmrestd URL and user, the token
source, the optional transport (token command, job output), job defaults and HTTP limits."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import Field

from ..identity import unix_user
from ..transports import TransportSettings
from .base import BackendSettings
from .slurmrest_token import TokenSettings

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class SlurmRestSettings(BackendSettings):
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="slurmrestd base URL.")
    user: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
        # One site-wide entry serves every user: by default each server speaks for its own
        # Unix account (with that account's token), never for a name from the environment.
        default_factory=unix_user,
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
