"""One shared refresher per client for all widgets: push events, or polling as a fallback."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import PWLabError
from .connection import EventStream, ServerConnection

log = logging.getLogger("parallelworks_lab.client")


JobListener = Callable[[dict[str, Any]], None]
TickListener = Callable[[], None]


@dataclass(eq=False)
class Subscription:
    on_job: Optional[JobListener] = None
    on_tick: Optional[TickListener] = None
    feed: Optional[JobFeed] = field(default=None, repr=False)

    def close(self) -> None:
        if self.feed is not None:
            self.feed._remove(self)
            self.feed = None


class JobFeed:
    """One background thread per client that keeps every widget of that client up to date.

    It listens to the server's push events (one WebSocket, whatever the number of widgets); if
    that is not possible it asks the server for the job list once per ``poll_interval``. It
    calls each subscriber's ``on_job`` with every job change and ``on_tick`` every
    ``tick_interval`` seconds (for clocks and log tails). The scheduler is never asked: the
    server's poller does that, once per cluster.
    """

    def __init__(
        self,
        connection: ServerConnection,
        tick_interval: float = 1.0,
        poll_interval: float = 3.0,
    ) -> None:
        self.connection = connection
        self.tick_interval = tick_interval
        self.poll_interval = poll_interval
        self.mode = "stopped"  # "events", "polling" or "stopped"
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._seen: dict[str, str] = {}
        self.polls = 0  # job-list requests made (tests read it)

    def subscribe(
        self, on_job: Optional[JobListener] = None, on_tick: Optional[TickListener] = None
    ) -> Subscription:
        sub = Subscription(on_job, on_tick, self)
        with self._lock:
            self._subscribers.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="pwlab-feed", daemon=True
                )
                self._thread.start()
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
            if not self._subscribers:
                self._stop.set()
                self._thread = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        with self._lock:
            self._subscribers.clear()
            self._stop.set()
            self._thread = None

    def _dispatch_job(self, data: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            if sub.on_job is not None:
                try:
                    sub.on_job(data)
                except Exception:  # a broken widget must not stop the others
                    log.warning("a job update failed in a widget", exc_info=True)

    def _tick(self) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            if sub.on_tick is not None:
                try:
                    sub.on_tick()
                except Exception as exc:  # e.g. the server is restarting: try next tick
                    log.debug("a widget refresh failed: %s", exc)

    def _resync(self) -> None:
        """One request for the current list; dispatch what changed since last time."""
        self.polls += 1
        page = self.connection.jobs(None, [], 200, None)
        for info in page.jobs:
            stamp = info.updated_at.isoformat()
            if self._seen.get(info.id) != stamp:
                self._seen[info.id] = stamp
                self._dispatch_job(info.model_dump(mode="json"))

    def _run(self, stop: threading.Event) -> None:
        stream: Optional[EventStream] = None
        retry_at = 0.0
        last_tick = last_poll = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if stream is None and now >= retry_at:
                    try:
                        stream = self.connection.events()
                        self.mode = "events"
                        self._resync()  # events are not replayed: load the state first
                        last_poll = now
                    except Exception:
                        stream = None
                        self.mode = "polling"
                        retry_at = now + 15.0
                if stream is not None:
                    try:
                        event = stream.next(self.tick_interval)
                    except (ConnectionError, OSError):
                        stream = None
                        retry_at = time.monotonic() + 1.0
                        continue
                    if event is not None and event[0] == "job":
                        self._seen[str(event[1].get("id"))] = str(event[1].get("updated_at"))
                        self._dispatch_job(event[1])
                else:
                    stop.wait(self.tick_interval)
                    if time.monotonic() - last_poll >= self.poll_interval:
                        last_poll = time.monotonic()
                        try:
                            self._resync()
                        except PWLabError:
                            pass
                if stop.is_set():
                    break
                if time.monotonic() - last_tick >= self.tick_interval:
                    last_tick = time.monotonic()
                    self._tick()
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: S110 - closing a broken socket
                    pass
            if self._thread is None or self._thread is threading.current_thread():
                self.mode = "stopped"
