"""A job as the Python API shows it (:class:`Job`) and a list of jobs (:class:`Jobs`)."""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Optional
from urllib.parse import quote

from pydantic import ValidationError

from .. import notebook_job
from ..guidance.models import PartitionLoad, Provenance, ReasonExplanation, Usage
from ..models import Job as JobInfo
from ..models import LogChunk, ResourceRequest
from ..states import JobState
from .connection import ServerConnection
from .display import format_elapsed, format_time, state_badge
from .feed import JobFeed
from .guidance import job_rows, rows_html, rows_text
from .http import API_BASE, _seg

LOG_POLL_SECONDS = 0.5


class Job:
    """A job: a cached copy of the server's record plus methods to act on it.

    Attributes reflect the last :meth:`refresh` (or event); ``wait``/``follow`` keep it fresh.
    A :class:`~parallelworks_lab.client.Client` makes it; it acts through that client's
    server connection.
    """

    def __init__(self, connection: ServerConnection, info: JobInfo, feed: JobFeed) -> None:
        self._connection = connection
        self._info = info
        # The client's shared feed: what a JobMonitor of this job subscribes to.
        self.feed = feed
        self.notebook: Optional[str] = None  # set for notebook jobs: the input notebook

    # -- data ------------------------------------------------------------------------------
    @property
    def info(self) -> JobInfo:
        return self._info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def cluster(self) -> str:
        return self._info.cluster

    @property
    def native_id(self) -> Optional[str]:
        return self._info.native_id

    @property
    def state(self) -> JobState:
        return self._info.state

    @property
    def raw_state(self) -> Optional[str]:
        return self._info.raw_state

    @property
    def reason(self) -> Optional[str]:
        return self._info.reason

    @property
    def exit_code(self) -> Optional[int]:
        return self._info.exit_code

    @property
    def terminal(self) -> bool:
        return self._info.terminal

    @property
    def resources(self) -> ResourceRequest:
        return self._info.resources

    @property
    def parent_id(self) -> Optional[str]:
        """For an array task: the id of its array job."""
        return self._info.parent_id

    @property
    def submitted_at(self) -> datetime:
        return self._info.submitted_at

    @property
    def started_at(self) -> Optional[datetime]:
        return self._info.started_at

    @property
    def ended_at(self) -> Optional[datetime]:
        return self._info.ended_at

    @property
    def working_dir(self) -> Optional[str]:
        return self._info.working_dir

    @property
    def reason_explained(self) -> Optional[ReasonExplanation]:
        """The reason in plain words (``summary``), with what to do about it (``advice``)."""
        return self._info.reason_explained

    @property
    def estimated_start(self) -> Optional[datetime]:
        """When the scheduler expects this waiting job to start (None when it does not say)."""
        return self._info.estimated_start

    @property
    def partition_load(self) -> Optional[PartitionLoad]:
        """How busy a waiting job's partition is; only in a job fetched by id (``refresh``)."""
        return self._info.partition_load

    @property
    def usage(self) -> Optional[Usage]:
        """What a finished job used beside what it asked for (the efficiency card)."""
        return self._info.usage

    @property
    def provenance(self) -> Optional[Provenance]:
        """Where the job came from: notebook and cell, git commit, modules, user."""
        return self._info.provenance

    def guidance(self) -> str:
        """Why it waits and when it should start, or what it used, and where it came from."""
        return rows_text(job_rows(self._info), indent="")

    @property
    def elapsed(self) -> Optional[timedelta]:
        """Run time so far (or in total once it ended); None before it started."""
        if self.started_at is None:
            return None
        end = self.ended_at or datetime.now(timezone.utc)
        return end - self.started_at

    @property
    def output_notebook(self) -> Optional[str]:
        """For a notebook job: where its executed copy is (``<name>.<native id>.ipynb``)."""
        if self.notebook is None or self.native_id is None:
            return None
        return notebook_job.output_path(self.notebook, self.native_id)

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.COMPLETED

    # -- actions ---------------------------------------------------------------------------
    def refresh(self) -> Job:
        self._info = self._connection.job(self.id)
        return self

    def apply_event(self, data: Mapping[str, Any]) -> bool:
        """Update from a job-state event (fields the event carries); True if it changed."""
        if data.get("id") != self.id:
            return False
        fields = {k: v for k, v in data.items() if k in JobInfo.model_fields}
        merged = {**self._info.model_dump(mode="json"), **fields}
        try:
            info = JobInfo.model_validate(merged)
        except ValidationError:
            return False
        changed = info != self._info
        self._info = info
        return changed

    def wait(self, timeout: Optional[float] = None, interval: float = 2.0) -> Job:
        """Block until the job has ended; ``TimeoutError`` after ``timeout`` seconds.

        It asks the Jupyter server (its job store), never the scheduler: quickly at first,
        then every ``interval`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.1
        while not self.refresh().terminal:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {self.state.value} after {timeout}s")
            pause = delay if deadline is None else min(delay, max(0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 1.5, interval)
        return self

    def read_log(self, stream: str = "stdout", offset: int = 0) -> LogChunk:
        """One chunk of a log from ``offset`` (see the REST API's ``/logs``)."""
        return self._connection.read_log(self.id, stream, offset)

    def logs(self, stream: str = "stdout") -> str:
        """The whole log written so far (``stdout`` or ``stderr``)."""
        parts: list[str] = []
        offset = 0
        while True:
            chunk = self.read_log(stream, offset)
            parts.append(chunk.data)
            if chunk.eof or chunk.offset == offset:
                return "".join(parts)
            offset = chunk.offset

    def follow(
        self,
        stdout: Optional[IO[str]] = None,
        stderr: Optional[IO[str]] = None,
        interval: float = LOG_POLL_SECONDS,
    ) -> Job:
        """Write the logs to ``stdout``/``stderr`` as they grow, until the job has ended.

        An interrupt (``KeyboardInterrupt``) stops following; the job keeps running.
        """
        outs = {"stdout": stdout or sys.stdout, "stderr": stderr or sys.stderr}
        offsets = {"stdout": 0, "stderr": 0}
        done: set[str] = set()
        while len(done) < len(offsets):
            progressed = False
            for stream in offsets:
                if stream in done:
                    continue
                chunk = self.read_log(stream, offsets[stream])
                if chunk.data:
                    outs[stream].write(chunk.data)
                    outs[stream].flush()
                    progressed = True
                offsets[stream] = chunk.offset
                if chunk.eof:
                    done.add(stream)
            if not progressed and len(done) < len(offsets):
                time.sleep(interval)
        return self.refresh()

    def cancel(self) -> Job:
        self._info = self._connection.action(self.id, "cancel")
        return self

    def hold(self) -> Job:
        self._info = self._connection.action(self.id, "hold")
        return self

    def release(self) -> Job:
        self._info = self._connection.action(self.id, "release")
        return self

    # -- display ---------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: id, name, cluster, state (with reason and exit code when there are)."""
        text = f"job {self.id} '{self.name}' on {self.cluster}: {self.state.value}"
        if self.reason:
            text += f" ({self.reason})"
        if self.exit_code is not None and self.terminal:
            text += f", exit code {self.exit_code}"
        return text

    def __repr__(self) -> str:
        head = (
            f"<Job {self.id} {self.name!r} on {self.cluster!r}: {self.state.value}"
            + (f" ({self.reason})" if self.reason else "")
            + ">"
        )
        rows = job_rows(self._info)
        return head + ("\n" + rows_text(rows) if rows else "")

    def _links(self) -> list[tuple[str, str]]:
        base = self._connection.link_base
        if base is None:
            return []
        api = f"{base}{API_BASE}/jobs/{_seg(self.id)}"
        links = [
            ("job", api),
            ("stdout", f"{api}/logs?stream=stdout"),
            ("stderr", f"{api}/logs?stream=stderr"),
        ]
        output = self.output_notebook
        root = self._connection.root_dir
        if output and root:
            try:
                rel = Path(output).resolve().relative_to(Path(root).resolve())
            except ValueError:
                pass
            else:
                links.append(("executed notebook", f"{base}lab/tree/{quote(rel.as_posix())}"))
        return links

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [
            ("Job", f"<code>{esc(self.id)}</code> {esc(self.name)}"),
            (
                "Cluster",
                esc(self.cluster) + (f" (#{esc(self.native_id)})" if self.native_id else ""),
            ),
            (
                "State",
                state_badge(self.state.value) + (f" — {esc(self.reason)}" if self.reason else ""),
            ),
        ]
        if self.exit_code is not None:
            rows.append(("Exit code", str(self.exit_code)))
        rows.append(("Submitted", esc(format_time(self.submitted_at))))
        if self.started_at:
            rows.append(("Elapsed", esc(format_elapsed(self.elapsed))))
        if self.output_notebook:
            rows.append(("Output", f"<code>{esc(self.output_notebook)}</code>"))
        links = self._links()
        tail: list[tuple[str, str]] = []
        if links:
            tail.append(
                (
                    "Links",
                    " · ".join(
                        f'<a href="{esc(href)}" target="_blank" rel="noopener">{esc(label)}</a>'
                        for label, href in links
                    ),
                )
            )

        def table_rows(pairs: list[tuple[str, str]]) -> str:
            return "".join(
                f'<tr><th style="text-align:left;padding-right:1em">{k}</th>'
                f'<td style="text-align:left">{v}</td></tr>'
                for k, v in pairs
            )

        # Guidance (reason, start estimate, efficiency card, provenance) between the job's
        # facts and its links; its text is escaped by rows_html.
        guidance = rows_html(job_rows(self._info))
        body = table_rows(rows) + guidance + table_rows(tail)
        return f'<table class="jp-pwlab-job">{body}</table>'


class Jobs(list[Job]):
    """A list of jobs that displays as a table."""

    COLUMNS = ("id", "name", "cluster", "state", "reason", "submitted", "elapsed")

    @staticmethod
    def _cells(job: Job) -> list[str]:
        return [
            job.id,
            job.name,
            job.cluster,
            job.state.value,
            job.reason or "",
            format_time(job.submitted_at),
            format_elapsed(job.elapsed),
        ]

    def __repr__(self) -> str:
        if not self:
            return "(no jobs)"
        rows = [list(self.COLUMNS)] + [self._cells(j) for j in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows
        )

    def _repr_html_(self) -> str:
        return jobs_html(self)


def jobs_html(jobs: Iterable[Job]) -> str:
    esc = html.escape
    head = "".join(f"<th style='text-align:left'>{c}</th>" for c in Jobs.COLUMNS)
    rows = []
    for job in jobs:
        cells = Jobs._cells(job)
        cells_html = [f"<code>{esc(cells[0])}</code>", esc(cells[1]), esc(cells[2])]
        cells_html += [state_badge(cells[3])] + [esc(c) for c in cells[4:]]
        rows.append("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells_html))
    if not rows:
        return "<p>No jobs.</p>"
    return f'<table class="jp-pwlab-jobs"><tr>{head}</tr>{"".join(rows)}</table>'
