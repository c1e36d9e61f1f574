"""The :class:`ResourceForm`: a submit form built from the cluster's ``options_schema``."""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

import ipywidgets as widgets  # type: ignore[import-untyped]

from ..client import (
    Client,
    Job,
    default_client,
    parse_memory,
    parse_time,
    suggestion_text,
)
from ..client.guidance import memory_option, time_option
from ..errors import FieldError, InvalidRequest, PWLabError
from ..guidance.models import Suggestion
from ..guidance.templates import Template
from ..models import ClusterDetail
from ..parameters import parse_parameter
from .base import ERROR_STYLE, Displayable
from .monitor import JobMonitor
from .options import allowed_names, bounds

INT_FIELDS = ("nodes", "ntasks", "cpus_per_task", "gpus")
TEXT_FIELDS = ("memory_mb", "time_limit_minutes", "array")
# Free text, with the partition's allowed names (if it has a list) offered as choices.
NAME_FIELDS = ("account", "qos")
LABELS = {
    "partition": "Partition",
    "nodes": "Nodes",
    "ntasks": "Tasks",
    "cpus_per_task": "CPUs per task",
    "gpus": "GPUs",
    "memory_mb": "Memory",
    "time_limit_minutes": "Time limit",
    "array": "Array",
    "account": "Account",
    "qos": "QOS",
    "name": "Job name",
    "working_dir": "Working dir",
    "body": "Command",
    "notebook": "Notebook",
    "parameters": "Parameters",
}
PLACEHOLDERS = {
    "memory_mb": "default (e.g. 4096, 500M, 4G)",
    "time_limit_minutes": "default (e.g. 90, 1:30:00, 1-00:00:00)",
    "array": "none (e.g. 1-10, 1,3,5, 1-100%10)",
    "account": "default",
    "qos": "default",
    "working_dir": "current directory",
    "name": "default",
}
SUGGEST_DELAY = 1.0  # seconds of no typing before the form asks for a suggestion
LAYOUT = {"width": "auto"}
LABEL_WIDTH = "110px"


def _row(label: str, control: Any, error: Any) -> Any:
    return widgets.VBox(
        [
            widgets.HBox(
                [widgets.Label(label, layout={"width": LABEL_WIDTH}), control],
                layout=LAYOUT,
            ),
            error,
        ]
    )


class ResourceForm(Displayable):
    """A submit form built from the cluster's ``options_schema``.

    Same limits as the sidebar form (the schema carries each partition's), errors shown under
    each field, and a Submit button; :meth:`submit` does the same from code and returns the
    :class:`~parallelworks_lab.client.Job` (also kept in :attr:`job`).

    ``command`` or ``script`` prefill what to run; ``notebook`` (with ``parameters``) makes it a
    form for running a notebook as a job. ``template`` (a name from ``client.templates()``)
    prefills the cluster, resources and script or command; the other arguments win.

    For a script or command that ran before, the form shows what those runs used and a
    **Use these** button that fills memory and time with the suggestion: nothing is changed
    without the click.
    """

    def __init__(
        self,
        cluster: Optional[str] = None,
        *,
        command: Optional[str] = None,
        script: Optional[str] = None,
        notebook: Optional[str] = None,
        parameters: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
        working_dir: Optional[str] = None,
        client: Optional[Client] = None,
        monitor: bool = True,
        template: Optional[str] = None,
    ) -> None:
        self.client = client or default_client()
        self.template: Optional[Template] = self.client.template(template) if template else None
        if self.template is not None and script is None and command is None and not notebook:
            script, command = self.template.script, self.template.command
        self.suggested: Optional[Suggestion] = None
        self._suggest_timer: Optional[threading.Timer] = None
        self.job: Optional[Job] = None
        self.monitor: Optional[JobMonitor] = None
        self._show_monitor = monitor
        self._callbacks: list[Callable[[Job], None]] = []
        self._mode = "notebook" if notebook else ("script" if script is not None else "command")
        self.detail: Optional[ClusterDetail] = None
        self.fields: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}

        cluster_ids = [c.id for c in self.client.clusters()]
        self.cluster_select = widgets.Dropdown(
            options=cluster_ids,
            value=cluster
            or (self.template.cluster if self.template else None)
            or self.client.default_cluster,
            layout=LAYOUT,
        )
        self._resource_box = widgets.VBox([])
        job_rows = []
        for field_name, value in (("name", name), ("working_dir", working_dir)):
            control = widgets.Text(
                value=value or "", placeholder=PLACEHOLDERS[field_name], layout=LAYOUT
            )
            job_rows.append(self._field(field_name, control))
        if self._mode == "notebook":
            job_rows.append(
                self._field("notebook", widgets.Text(value=str(notebook), layout=LAYOUT))
            )
            lines = "\n".join(f"{k}={v!r}" for k, v in (parameters or {}).items())
            job_rows.append(
                self._field(
                    "parameters",
                    widgets.Textarea(
                        value=lines, placeholder="alpha=0.1 (one per line)", layout=LAYOUT
                    ),
                )
            )
        else:
            body = widgets.Textarea(
                value=script if script is not None else (command or ""),
                placeholder="a bash command" if self._mode == "command" else "a batch script",
                rows=6 if self._mode == "script" else 2,
                layout={"width": "100%"},
            )
            label = "Script" if self._mode == "script" else "Command"
            job_rows.append(self._field("body", body, label))

        self.submit_button = widgets.Button(
            description="Submit", button_style="primary", icon="paper-plane"
        )
        self.submit_button.on_click(lambda _button: self._on_click())
        self.status = widgets.HTML("")
        self.output = widgets.VBox([])
        self.suggestion = widgets.HTML("")
        self.use_suggestion_button = widgets.Button(
            description="Use these",
            icon="magic",
            tooltip="Fill memory and time with what earlier runs needed",
            layout={"display": "none"},
        )
        self.use_suggestion_button.on_click(lambda _button: self.use_suggestion())
        self.widget = widgets.VBox(
            [
                _row("Cluster", self.cluster_select, widgets.HTML("")),
                self._resource_box,
                *job_rows,
                widgets.HBox([self.suggestion, self.use_suggestion_button]),
                widgets.HBox([self.submit_button, self.status]),
                self.output,
            ]
        )
        self.widget.add_class("jp-pwlab-resource-form")
        self._build_resources()
        self.cluster_select.observe(lambda _change: self._build_resources(), names="value")
        for field_name in ("body", "name"):
            if field_name in self.fields:
                self.fields[field_name].observe(
                    lambda _change: self._suggest_later(), names="value"
                )

    # -- building ----------------------------------------------------------------------------
    def _field(self, field_name: str, control: Any, label: Optional[str] = None) -> Any:
        error = widgets.HTML("", layout={"margin": "0 0 0 " + LABEL_WIDTH})
        self.fields[field_name] = control
        self.errors[field_name] = error
        control.observe(lambda _change: self.validate(), names="value")
        return _row(label or LABELS.get(field_name, field_name), control, error)

    def _build_resources(self) -> None:
        for old in ("partition", *INT_FIELDS, *TEXT_FIELDS, *NAME_FIELDS):
            self.fields.pop(old, None)
            self.errors.pop(old, None)
        self.detail = self.client.cluster(self.cluster_select.value)
        props = self.detail.options_schema.get("properties", {})
        rows = []
        partition = props.get("partition", {})
        rows.append(
            self._field(
                "partition",
                widgets.Dropdown(
                    options=partition.get("enum", []),
                    value=partition.get("default"),
                    layout=LAYOUT,
                ),
            )
        )
        for field_name in INT_FIELDS:
            if field_name in props:
                default = props[field_name].get("default", 1)
                rows.append(self._field(field_name, widgets.IntText(value=default, layout=LAYOUT)))
        for field_name in TEXT_FIELDS:
            if field_name in props:
                control = widgets.Text(
                    value="", placeholder=PLACEHOLDERS[field_name], layout=LAYOUT
                )
                rows.append(self._field(field_name, control))
        for field_name in NAME_FIELDS:
            if field_name in props:
                control = widgets.Combobox(
                    value="",
                    placeholder=PLACEHOLDERS[field_name],
                    ensure_option=False,
                    layout=LAYOUT,
                )
                rows.append(self._field(field_name, control))
        self.fields["partition"].observe(lambda _change: self._offer_names(), names="value")
        self._offer_names()
        self._resource_box.children = rows
        if self.template is not None:
            self.fill(self.template.resources)
        self.validate()
        self.refresh_suggestion()

    def fill(self, resources: Mapping[str, Any]) -> None:
        """Put resource values (``memory_mb=1024``, ``time_limit_minutes=90``, ...) into the
        form's fields, as text the fields take (``1G``, ``1:30:00``); fields the cluster's form
        does not have are left out."""
        for field_name, value in resources.items():
            control = self.fields.get(field_name)
            if control is None or value is None:
                continue
            if field_name == "partition":
                if value in control.options:
                    control.value = value
            elif field_name in INT_FIELDS:
                control.value = int(value)
            elif field_name == "memory_mb":
                control.value = memory_option(int(value))
            elif field_name == "time_limit_minutes":
                control.value = time_option(int(value))
            else:
                control.value = str(value)

    # -- suggestion from earlier runs --------------------------------------------------------
    def _suggest_later(self) -> None:
        """Ask for a suggestion once the typing stopped (not on every keystroke)."""
        if self._suggest_timer is not None:
            self._suggest_timer.cancel()
        self._suggest_timer = threading.Timer(SUGGEST_DELAY, self.refresh_suggestion)
        self._suggest_timer.daemon = True
        self._suggest_timer.start()

    def refresh_suggestion(self) -> Optional[Suggestion]:
        """Ask the server what earlier runs of this script or command used, and show it."""
        suggestion = None
        body = str(self.fields["body"].value) if "body" in self.fields else ""
        if body.strip() and self.detail is not None:
            try:
                planned = self.values()
            except ValueError:
                planned = {}
            target = {"script": body} if self._mode == "script" else {"command": body}
            name = str(self.fields["name"].value).strip() or None
            try:
                suggestion = self.client.suggest(
                    **target, name=name, cluster=self.cluster_select.value, **planned
                )
            except PWLabError:
                suggestion = None  # a suggestion is a help, never an obstacle
        self._show_suggestion(suggestion)
        return suggestion

    def _show_suggestion(self, suggestion: Optional[Suggestion]) -> None:
        text = suggestion_text(suggestion) if suggestion is not None else None
        self.suggested = suggestion if text else None
        self.suggestion.value = f"<i>{html.escape(text)}</i>" if text else ""
        usable = bool(
            self.suggested is not None
            and any(key in self.fields for key in self.suggested.resources)
        )
        self.use_suggestion_button.layout.display = "" if usable else "none"

    def use_suggestion(self) -> None:
        """Fill memory and time with the suggestion shown (what the button does)."""
        if self.suggested is None:
            return
        self.fill(self.suggested.resources)
        self.status.value = "Memory and time filled in from earlier runs."

    def _offer_names(self) -> None:
        """The chosen partition's accounts/QOS as the combo boxes' choices."""
        assert self.detail is not None
        for field_name in NAME_FIELDS:
            if field_name in self.fields:
                names = allowed_names(self.detail.options_schema, field_name, self.partition)
                self.fields[field_name].options = names

    # -- values and validation ---------------------------------------------------------------
    @property
    def partition(self) -> Optional[str]:
        value = self.fields["partition"].value
        return str(value) if value else None

    def values(self) -> dict[str, Any]:
        """The resource keyword arguments the form holds (raises ValueError on bad text)."""
        out: dict[str, Any] = {"partition": self.partition}
        for field_name in INT_FIELDS:
            if field_name in self.fields:
                out[field_name] = int(self.fields[field_name].value)
        for field_name in TEXT_FIELDS:
            text = str(self.fields[field_name].value).strip() if field_name in self.fields else ""
            if not text:
                continue
            if field_name == "memory_mb":
                out[field_name] = parse_memory(text)
            elif field_name == "time_limit_minutes":
                out[field_name] = parse_time(text)
            else:
                out[field_name] = text
        for field_name in NAME_FIELDS:
            text = str(self.fields[field_name].value).strip() if field_name in self.fields else ""
            if text:
                out[field_name] = text
        return out

    def validate(self) -> dict[str, str]:
        """Check every field against the schema's limits; show and return the errors."""
        if self.detail is None or "partition" not in self.fields:
            return {}
        schema = self.detail.options_schema
        problems: dict[str, str] = {}
        where = f"partition '{self.partition}'"
        for field_name in (*INT_FIELDS, *TEXT_FIELDS):
            control = self.fields.get(field_name)
            if control is None:
                continue
            raw = control.value
            if isinstance(raw, str):
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    if field_name == "memory_mb":
                        raw = parse_memory(raw)
                    elif field_name == "time_limit_minutes":
                        raw = parse_time(raw)
                    else:
                        continue  # array: its pattern is checked by the server
                except ValueError as exc:
                    problems[field_name] = str(exc)
                    continue
            minimum, maximum = bounds(schema, field_name, self.partition)
            if minimum is not None and raw < minimum:
                problems[field_name] = f"must be at least {minimum}"
            elif maximum is not None and raw > maximum:
                problems[field_name] = f"{raw} exceeds the limit of {maximum} on {where}"
        for field_name in NAME_FIELDS:
            text = str(self.fields[field_name].value).strip() if field_name in self.fields else ""
            allowed = allowed_names(schema, field_name, self.partition)
            if text and allowed and text not in allowed:
                problems[field_name] = f"not allowed on {where}; allowed: {', '.join(allowed)}"
        if self._mode == "notebook":
            try:
                self._parameters()
            except ValueError as exc:
                problems["parameters"] = str(exc)
        elif "body" in self.fields and not str(self.fields["body"].value).strip():
            problems["body"] = "required"
        self._show_errors(problems)
        return problems

    def _show_errors(self, problems: Mapping[str, str], general: str = "") -> None:
        for field_name, label in self.errors.items():
            message = problems.get(field_name, "")
            label.value = (
                f'<span style="{ERROR_STYLE}">{html.escape(message)}</span>' if message else ""
            )
        self.submit_button.disabled = bool(problems)
        if general:
            self.status.value = f'<span style="{ERROR_STYLE}">{html.escape(general)}</span>'
        elif problems:
            self.status.value = ""

    def _parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {}
        for line in str(self.fields["parameters"].value).splitlines():
            if line.strip():
                name, value = parse_parameter(line.strip())  # ValueError: shown in the form
                parameters[name] = value
        return parameters

    # -- submitting ----------------------------------------------------------------------------
    def on_submit(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` after each successful submit from the button."""
        self._callbacks.append(callback)

    def submit(self) -> Job:
        """Submit what the form holds; returns the job. Errors are shown in the form and raised
        (:class:`~parallelworks_lab.errors.InvalidRequest` with one entry per field)."""
        problems = self.validate()
        if problems:
            raise InvalidRequest(
                "; ".join(f"{k}: {v}" for k, v in problems.items()),
                [FieldError(k, v) for k, v in problems.items()],
            )
        options: dict[str, Any] = {
            "cluster": self.cluster_select.value,
            "name": str(self.fields["name"].value).strip() or None,
            **self.values(),
        }
        working_dir = str(self.fields["working_dir"].value).strip()
        if working_dir:
            options["working_dir"] = working_dir
        try:
            if self._mode == "notebook":
                job = self.client.submit_notebook(
                    str(self.fields["notebook"].value).strip(), self._parameters(), **options
                )
            elif self._mode == "script":
                job = self.client.submit(str(self.fields["body"].value), **options)
            else:
                job = self.client.submit(command=str(self.fields["body"].value), **options)
        except PWLabError as exc:
            self._show_server_errors(exc)
            raise
        self.job = job
        # No state here: it would go stale; the job's monitor shows it live.
        self.status.value = f"Submitted <code>{html.escape(job.id)}</code>"
        return job

    def _show_server_errors(self, exc: PWLabError) -> None:
        problems: dict[str, str] = {}
        rest: list[str] = []
        for error in exc.errors:
            key = error.field.removeprefix("resources.")
            key = {"script": "body", "command": "body"}.get(key, key)
            if key in self.errors:
                problems[key] = error.message
            else:
                rest.append(f"{error.field}: {error.message}")
        general = "; ".join(rest) if rest else ("" if problems else exc.message)
        self._show_errors(problems, general)
        self.submit_button.disabled = False

    def close(self) -> None:
        if self._suggest_timer is not None:
            self._suggest_timer.cancel()
        if self.monitor is not None:
            self.monitor.close()
        super().close()

    def _on_click(self) -> None:
        self.submit_button.disabled = True
        try:
            job = self.submit()
        except PWLabError:
            return  # shown in the form
        except Exception as exc:
            self._show_errors({}, f"{type(exc).__name__}: {exc}")
            return
        finally:
            if not any(e.value for e in self.errors.values()):
                self.submit_button.disabled = False
        if self._show_monitor:
            if self.monitor is not None:
                self.monitor.close()
            self.monitor = JobMonitor(job)
            self.output.children = [self.monitor.widget]
        for callback in self._callbacks:
            callback(job)
