"""The transport protocol: run a command (argv list), read part of a file."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import NamedTuple, Optional


class TransportError(Exception):
    """The command could not be run at all (connection lost, timeout): cluster unreachable."""


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class StartedAs(NamedTuple):
    """What a command started ahead was started as; a call must match all of it."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: Optional[str]
    umask: Optional[int]


class Transport(abc.ABC):
    def __init__(self) -> None:
        self.commands_run = 0  # benchmarks count scheduler commands with it

    @abc.abstractmethod
    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        timeout: float = 60.0,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
        start_ahead: bool = False,
    ) -> CommandResult:
        """Run ``argv`` (never through a local shell; quoted for the remote one) and wait.

        ``idempotent=False`` (a submit): never run it a second time after a failure that may
        have come after it started; the caller reconciles instead. ``umask``: the command runs
        with it (a scheduler gives a job the umask it was submitted with). ``cwd``: it runs in
        that directory; NotADirectoryError, and nothing run, if that is not a directory the
        user can enter (checked in the same exchange where the transport can).
        ``start_ahead``: the same command (argv, environment, directory, umask) is likely to
        come again, and does nothing before its input ends; a transport that ``starts_ahead``
        keeps one started, to be handed the next call's input (see ``LocalTransport``).
        """

    @property
    def starts_ahead(self) -> bool:
        """Whether ``run(start_ahead=True)`` starts the next such command ahead."""
        return False

    async def environment_names(self, extra: dict[str, str]) -> set[str]:
        """The names of the environment variables a command run with ``env=extra`` gets."""
        # Names only (POSIX awk): values can be secrets, and nothing here needs them.
        listing = await self.run(["awk", "BEGIN { for (name in ENVIRON) print name }"])
        if listing.returncode != 0:
            raise TransportError(f"cannot list the environment: {listing.stderr.strip()}")
        return {*listing.stdout.split(), *extra}

    @abc.abstractmethod
    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``offset``; FileNotFoundError if it does not exist."""

    @abc.abstractmethod
    async def is_dir(self, path: str) -> bool: ...

    @abc.abstractmethod
    async def home(self) -> str:
        """The directory relative paths are resolved against."""

    async def close(self) -> None:
        """Release connections."""
