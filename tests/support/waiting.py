"""Waiting for something to become true: the one polling loop of the tests.

``wait_until`` for plain code (a thread, a kernel, a server in another process), and
``wait_until_async`` inside a test's event loop, where a blocking sleep would stall the very
service being waited for. Both fail with what was awaited and the last value seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Union, cast

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    check: Callable[[T], Any] = bool,
    what: str = "condition",
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until ``check`` holds for its value (default: the value is truthy);
    return that value. AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s; last: {value!r}")
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], Union[T, Awaitable[T]]],
    check: Callable[[T], Any] = bool,
    what: str = "condition",
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
) -> T:
    """:func:`wait_until` for async tests: ``probe`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        value = cast(T, await answer if inspect.isawaitable(answer) else answer)
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s; last: {value!r}")
        await asyncio.sleep(interval)
