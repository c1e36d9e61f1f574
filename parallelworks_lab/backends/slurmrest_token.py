"""The JWT a ``slurmrest`` cluster sends: where it comes from (a value, a file, or a command run
through the cluster's transport), when it is fetched again (before it expires, and once after a
rejection), and scrubbing anything token-like from text we repeat. A token is never logged, put
in an error message or returned."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import time
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..errors import CredentialsRejected

log = logging.getLogger("parallelworks_lab.slurmrest")

# A JWT (three base64url parts): scrubbed from anything we repeat from a command's stderr.
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


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
