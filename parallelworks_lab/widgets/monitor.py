"""The :class:`JobMonitor`: one job, live, with why it waits or what it used."""

from __future__ import annotations

import html
import threading
from typing import Any, Optional

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..client import Job, Subscription, format_elapsed, state_badge
from ..client.guidance import WAITING_STATES, job_rows, rows_html
from ..errors import PWLabError
from .base import ERROR_STYLE, Displayable

USAGE_WAIT_TICKS = 30  # how long a monitor waits for a finished job's usage figures
WAITING_LABELS = ("Why it waits", "What you can do", "Expected start", "Partition")


class JobMonitor(Displayable):
    """One job: state, reason, elapsed time, a following log tail and a Cancel button.

    While the job waits it says why, in plain words, with the scheduler's start estimate;
    once it has ended, what it used (the efficiency card's summary) and the hints.
    Updated by the client's shared :class:`~parallelworks_lab.client.JobFeed`; it stops
    listening once the job has ended, its logs are read to the end and its usage figures
    came (or did not come within half a minute).
    """

    def __init__(self, job: Job, *, tail_lines: int = 20, follow: bool = True) -> None:
        self.job = job
        self.tail_lines = tail_lines
        self._lock = threading.Lock()
        self._offsets = {"stdout": 0, "stderr": 0}
        self._eof = {"stdout": False, "stderr": False}
        self._tails = {"stdout": "", "stderr": ""}
        self.header = widgets.HTML()
        self.state = widgets.HTML()
        self.guidance = widgets.HTML()
        self._ended_ticks = 0
        self.elapsed = widgets.Label()
        self.follow = widgets.Checkbox(value=follow, description="Follow log", indent=False)
        self.log = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="")
        self.cancel_button.on_click(lambda _button: self._cancel())
        self.widget = widgets.VBox(
            [
                self.header,
                widgets.HBox([self.state, self.elapsed]),
                self.guidance,
                widgets.HBox([self.cancel_button, self.follow]),
                self.log,
            ]
        )
        self.widget.add_class("jp-pwlab-job-monitor")
        self._render()
        self._subscription: Optional[Subscription] = job.feed.subscribe(
            on_job=self._on_event, on_tick=self._on_tick
        )

    def _on_event(self, data: dict[str, Any]) -> None:
        if data.get("id") == self.job.id and self.job.apply_event(data):
            self._render()

    def _on_tick(self) -> None:
        # A queued job has no log yet: read only once it started (or ended).
        if self.follow.value and self.job.state.value not in ("SUBMITTING", "QUEUED", "HELD"):
            self._read_logs()
        self._render()
        if self.job.terminal:
            self._ended_ticks += 1
        if self.job.terminal and all(self._eof.values()) and self._usage_settled():
            self.stop()

    def _usage_settled(self) -> bool:
        """The usage figures came, or will not (clusters report them a little after the end)."""
        return self.job.usage is not None or self._ended_ticks > USAGE_WAIT_TICKS

    def _read_logs(self) -> None:
        with self._lock:
            for stream in ("stdout", "stderr"):
                if self._eof[stream]:
                    continue
                chunk = self.job.read_log(stream, self._offsets[stream])
                self._offsets[stream] = chunk.offset
                self._eof[stream] = chunk.eof
                if chunk.data:
                    text = self._tails[stream] + chunk.data
                    self._tails[stream] = "\n".join(text.split("\n")[-(self.tail_lines + 1) :])

    def _render(self) -> None:
        job = self.job
        esc = html.escape
        native = f" #{esc(job.native_id)}" if job.native_id else ""
        self.header.value = (
            f"<b>{esc(job.name)}</b> <code>{esc(job.id)}</code> on {esc(job.cluster)}{native}"
        )
        state = state_badge(job.state.value)
        if job.reason:
            state += f" — {esc(job.reason)}"
        if job.terminal and job.exit_code is not None:
            state += f" (exit code {job.exit_code})"
        self.state.value = state
        elapsed = format_elapsed(job.elapsed)
        self.elapsed.value = f"elapsed {elapsed}" if elapsed else ""
        self.guidance.value = self._guidance_html()
        self.cancel_button.disabled = job.terminal
        parts = []
        if self._tails["stdout"]:
            parts.append(f"<pre class='jp-pwlab-log'>{esc(self._tails['stdout'])}</pre>")
        if self._tails["stderr"]:
            parts.append(
                f"<pre class='jp-pwlab-log' style='{ERROR_STYLE}'>"
                f"{esc(self._tails['stderr'])}</pre>"
            )
        self.log.value = "".join(parts)

    def _guidance_html(self) -> str:
        """Waiting: why and until when. Ended: what it used, and the hints."""
        job = self.job
        rows = job_rows(job.info)
        if job.state in WAITING_STATES and not job.terminal:
            rows = [row for row in rows if row[0] in WAITING_LABELS]
            return f'<table class="jp-pwlab-guidance">{rows_html(rows)}</table>' if rows else ""
        if not job.terminal:
            return ""
        parts = [rows_html([row for row in rows if row[0] in ("Why", "What you can do")])]
        usage = job.usage
        if usage is not None:
            if usage.summary:
                parts.append(rows_html([("Used", usage.summary[0].upper() + usage.summary[1:])]))
            parts.append(rows_html([("Hint", hint) for hint in usage.hints]))
        body = "".join(parts)
        return f'<table class="jp-pwlab-guidance">{body}</table>' if body else ""

    def _cancel(self) -> None:
        try:
            self.job.cancel()
        except PWLabError as exc:
            self.state.value += f' <span style="{ERROR_STYLE}">{html.escape(exc.message)}</span>'
            return
        self._render()

    def refresh(self) -> None:
        """Read the job and its logs now (the shared feed does this on its own)."""
        self.job.refresh()
        self._read_logs()
        self._render()

    @property
    def listening(self) -> bool:
        return self._subscription is not None

    def stop(self) -> None:
        """Stop listening for updates (the display stays)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def close(self) -> None:
        self.stop()
        super().close()
