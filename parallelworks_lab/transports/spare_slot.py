"""The one command a transport keeps started ahead (``Transport.run(start_ahead=True)``): what
it was started as, and how long it may wait. Shared by the local and SSH transports, which
differ only in what a spare is and how it is let go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Optional, TypeVar

from .base import StartedAs

T = TypeVar("T")


class SpareSlot(Generic[T]):
    """At most one spare; ``release`` lets one go (it must not raise)."""

    def __init__(self, release: Callable[[T], None]) -> None:
        self._release = release
        self._held: Optional[tuple[StartedAs, T, asyncio.TimerHandle]] = None

    @property
    def spare(self) -> Optional[T]:
        return None if self._held is None else self._held[1]

    def take(self, started_as: StartedAs, usable: Callable[[T], bool]) -> Optional[T]:
        """The spare, if it was started as ``started_as`` and is ``usable``; it is then no
        longer held. Otherwise None, and it stays until replaced or expired."""
        if self._held is None:
            return None
        held_as, spare, expiry = self._held
        if held_as != started_as or not usable(spare):
            return None
        self._held = None
        expiry.cancel()
        return spare

    def put(self, started_as: StartedAs, spare: T, wait_seconds: float) -> None:
        """Hold ``spare`` (letting go of any other) for at most ``wait_seconds``."""
        self.discard()
        expiry = asyncio.get_running_loop().call_later(wait_seconds, self.discard)
        self._held = (started_as, spare, expiry)

    def discard(self) -> None:
        if self._held is not None:
            _, spare, expiry = self._held
            self._held = None
            expiry.cancel()
            self._release(spare)
