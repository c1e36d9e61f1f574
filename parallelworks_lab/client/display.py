"""How jobs and clusters show in a notebook: state badges, times, the clusters table."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Optional

from ..guidance.templates import Template
from ..models import ClusterSummary

STATE_COLOURS = {
    "COMPLETED": "var(--jp-success-color1, #388e3c)",
    "RUNNING": "var(--jp-brand-color1, #1976d2)",
    "COMPLETING": "var(--jp-brand-color1, #1976d2)",
    "QUEUED": "var(--jp-warn-color1, #f57c00)",
    "HELD": "var(--jp-warn-color1, #f57c00)",
    "SUBMITTING": "var(--jp-warn-color1, #f57c00)",
    "SUSPENDED": "var(--jp-warn-color1, #f57c00)",
}
ERROR_COLOUR = "var(--jp-error-color1, #d32f2f)"


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, ERROR_COLOUR if state != "UNKNOWN" else "inherit")
    return (
        f'<span class="jp-pwlab-state" style="color: {colour}; font-weight: 600">'
        f"{html.escape(state)}</span>"
    )


def format_elapsed(delta: Optional[timedelta]) -> str:
    if delta is None:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(value: Optional[datetime]) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class Clusters(list[ClusterSummary]):
    """The configured clusters, displayed as a table."""

    def __repr__(self) -> str:
        lines = [f"{c.id}  {c.kind}  {c.status}  {c.description}".rstrip() for c in self]
        return "\n".join(lines) or "(no clusters)"

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(c.id)}</code></td><td>{esc(c.name)}</td><td>{esc(c.kind)}</td>"
            f"<td>{esc(c.status)}{' — ' + esc(c.status_message) if c.status_message else ''}"
            f"</td><td>{esc(c.description)}</td></tr>"
            for c in self
        )
        return (
            '<table class="jp-pwlab-clusters"><tr><th>id</th><th>name</th><th>kind</th>'
            f"<th>status</th><th>description</th></tr>{rows}</table>"
        )


def template_resources(template: Template) -> str:
    """``cpus_per_task=1 memory_mb=1024 time_limit_minutes=30``."""
    return " ".join(f"{key}={value}" for key, value in template.resources.items())


class Templates(list[Template]):
    """Templates (site first, then yours), displayed as a table."""

    def __repr__(self) -> str:
        if not self:
            return "(no templates)"
        rows = [["name", "source", "cluster", "resources", "runs", "description"]]
        for t in self:
            runs = "script" if t.script is not None else "command" if t.command else ""
            rows.append(
                [t.name, t.source, t.cluster or "", template_resources(t), runs, t.description]
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows
        )

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No templates.</p>"
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(t.name)}</td><td>{esc(t.source)}"
            f"{' (read-only)' if t.read_only else ''}</td><td>{esc(t.cluster or '')}</td>"
            f"<td><code>{esc(template_resources(t))}</code></td>"
            f"<td>{esc(t.description)}</td></tr>"
            for t in self
        )
        return (
            '<table class="jp-pwlab-templates"><tr><th>name</th><th>source</th>'
            f"<th>cluster</th><th>resources</th><th>description</th></tr>{rows}</table>"
        )
