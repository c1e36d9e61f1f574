"""IPython magics: ``%load_ext parallelworks_lab``, then ``%%pw submit``, ``%pw jobs``, ...

Every magic goes through :class:`parallelworks_lab.client.Client`, so jobs submitted here show
in the sidebar (and the other way round). Bad options and refused requests give one line
(an IPython ``UsageError``), never a traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any, NoReturn, Optional

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .client import Client, Job, ServerNotFound, default_client, suggestion_text
from .client.guidance import memory_option, time_option
from .errors import PWLabError
from .parameters import ParameterError
from .parameters import parse_parameter as _parse_parameter

USAGE = """\
%%pw submit [options]       the cell is a batch script
%%pw python [options]       the cell is Python, run with the cluster's interpreter
%pw notebook PATH [-p NAME=VALUE ...] [--kernel NAME] [options]
%pw jobs [--cluster ID] [--state STATE[,STATE]] [--limit N]
%pw status ID | %pw logs ID [--stderr] [--follow] | %pw cancel ID | %pw hold ID | %pw release ID
%pw clusters | %pw templates

options: --cluster ID --partition NAME --account NAME --qos NAME
         --nodes N --ntasks N --cpus-per-task N --gpus N
         --mem SIZE (4G, 500M) --time LIMIT (90, 1:30:00, 1-00:00:00) --name NAME
         --array SPEC --after ID[,ID] --workdir DIR --env NAME=VALUE
         --template NAME (its cluster, resources and script; options win)
         --suggest (cells: first print what earlier runs of this cell used)
         --wait [--timeout SECONDS] (then show the output) --follow (stream the output)
The submitted job is returned: job = _"""

CELL_COMMANDS = ("submit", "python")
LINE_COMMANDS = (
    "notebook",
    "jobs",
    "status",
    "logs",
    "cancel",
    "hold",
    "release",
    "clusters",
    "templates",
)


class _Done(Exception):
    """``--help`` was shown: nothing more to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports one line (a UsageError) instead of exiting the kernel."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, allow_abbrev=False, add_help=True)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise _Done()


def _job_options(parser: argparse.ArgumentParser, cell: bool = False) -> None:
    add = parser.add_argument
    add("--template", help="start from this template (%%pw templates lists them)")
    if cell:
        add(
            "--suggest",
            action="store_true",
            help="print what earlier runs of this cell used before submitting (changes nothing)",
        )
    add("--cluster", help="cluster id (default: the first configured)")
    add("--partition", help="partition / queue")
    add("--account", help="account (project) to charge")
    add("--qos", help="quality of service")
    add("--nodes", type=int)
    add("--ntasks", type=int)
    add("--cpus-per-task", type=int, dest="cpus_per_task")
    add("--gpus", type=int)
    add("--mem", help="memory per node: 4096 (MiB), 500M, 4G")
    add("--time", help="time limit: minutes, H:MM:SS or D-HH:MM:SS")
    add("--name")
    add("--array", help="array spec, e.g. 1-10 or 1,3,5 or 1-100%%10")
    add("--after", action="append", default=[], help="job id(s) that must complete first")
    add("--workdir", help="working directory (default: the current directory)")
    add("--env", action="append", default=[], metavar="NAME=VALUE")
    add("--wait", action="store_true", help="wait for the job, then show its output")
    add("--follow", action="store_true", help="stream the output while the job runs")
    add("--timeout", type=float, help="with --wait: give up waiting after this many seconds")


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def parse_parameter(pair: str) -> tuple[str, Any]:
    """``-p alpha=0.1``: a Python literal when it is one (0.1, True, [1, 2]), else the text
    (:func:`parallelworks_lab.parameters.parse_parameter`, reporting a UsageError)."""
    try:
        return _parse_parameter(pair)
    except ParameterError as exc:
        raise UsageError(str(exc)) from None


def _submit_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "template": args.template,
        "cluster": args.cluster,
        "name": args.name,
        "working_dir": args.workdir,
        "env": _parse_env(args.env),
        "after": args.after,
        "partition": args.partition,
        "account": args.account,
        "qos": args.qos,
        "nodes": args.nodes,
        "ntasks": args.ntasks,
        "cpus_per_task": args.cpus_per_task,
        "gpus": args.gpus,
        "mem": args.mem,
        "time": args.time,
        "array": args.array,
    }


@magics_class
class PWMagics(Magics):
    """The ``%pw`` line magic and ``%%pw`` cell magic."""

    def __init__(self, shell: Optional[InteractiveShell] = None, client: Optional[Client] = None):
        super().__init__(shell)
        self._client = client

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = default_client()
        return self._client

    @client.setter
    def client(self, value: Optional[Client]) -> None:
        self._client = value

    @line_cell_magic
    def pw(self, line: str, cell: Optional[str] = None) -> Any:
        """Submit and manage cluster jobs. ``%pw help`` for the options."""
        try:
            return self._run(line, cell)
        except _Done:
            return None
        except (PWLabError, ServerNotFound, TimeoutError) as exc:
            raise UsageError(str(exc)) from None

    # -- dispatch -----------------------------------------------------------------------------
    def _run(self, line: str, cell: Optional[str]) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%pw: {exc}") from None
        if not words or words[0] in ("help", "-h", "--help"):
            print(USAGE)
            return None
        command, rest = words[0], words[1:]
        if cell is not None:
            if command not in CELL_COMMANDS:
                raise UsageError(
                    f"%%pw {command}: the cell form is %%pw submit or %%pw python"
                    + (f"; use %pw {command} (one %)" if command in LINE_COMMANDS else "")
                )
            if not cell.strip():
                raise UsageError(f"%%pw {command}: the cell is empty")
            return self._submit_cell(command, rest, cell)
        if command in CELL_COMMANDS:
            raise UsageError(f"%pw {command} needs a cell: write %%pw {command} on a cell's top")
        if command not in LINE_COMMANDS:
            known = ", ".join(CELL_COMMANDS + LINE_COMMANDS)
            raise UsageError(f"%pw: unknown command '{command}'; use one of: {known}")
        handler = getattr(self, f"_cmd_{command}")
        return handler(rest)

    # -- submitting -----------------------------------------------------------------------------
    def _submit_cell(self, command: str, argv: list[str], cell: str) -> Job:
        parser = _Parser(f"%%pw {command}")
        _job_options(parser, cell=True)
        args = parser.parse_args(argv)
        options = _submit_options(args)
        if args.suggest:
            self._print_suggestion(command, cell, options)
        if command == "submit":
            job = self.client.submit(cell, **options)
        else:
            job = self.client.submit_python(cell, **options)
        return self._after_submit(job, args)

    def _print_suggestion(self, command: str, cell: str, options: dict[str, Any]) -> None:
        """What earlier runs of this cell used, and what to ask for: printed, never applied."""
        resources = {k: v for k, v in options.items() if k not in SUGGEST_IGNORES}
        if command == "submit":
            suggestion = self.client.suggest(cell, **resources)
        else:
            suggestion = self.client.suggest_python(cell, **resources)
        text = suggestion_text(suggestion)
        if text is None:
            print("Suggestion: no earlier run of this cell to learn from yet.", flush=True)
            return
        flags = []
        if "memory_mb" in suggestion.resources:
            flags.append(f"--mem {memory_option(suggestion.resources['memory_mb'])}")
        if "time_limit_minutes" in suggestion.resources:
            flags.append(f"--time {time_option(suggestion.resources['time_limit_minutes'])}")
        hint = f" To use it: {' '.join(flags)}." if flags else ""
        print(f"Suggestion: {text}{hint}", flush=True)

    def _cmd_notebook(self, argv: list[str]) -> Job:
        parser = _Parser("%pw notebook")
        parser.add_argument("notebook", help="path of the .ipynb to run")
        parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--kernel", help="kernel name (default: the notebook's)")
        _job_options(parser)
        args = parser.parse_args(argv)
        parameters = dict(parse_parameter(p) for p in args.parameter)
        job = self.client.submit_notebook(
            args.notebook, parameters, kernel=args.kernel, **_submit_options(args)
        )
        return self._after_submit(job, args)

    def _after_submit(self, job: Job, args: argparse.Namespace) -> Job:
        if args.follow or args.wait:
            print(f"Submitted {job.summary()}", flush=True)
        if args.follow:
            return _follow(job)
        if args.wait:
            try:
                job.wait(timeout=args.timeout)
            except KeyboardInterrupt:
                print(_stopped(job, "waiting"), file=sys.stderr)
                return job
            _print_output(job)
        return job

    # -- looking at jobs --------------------------------------------------------------------------
    def _id_parser(self, command: str) -> _Parser:
        parser = _Parser(f"%pw {command}")
        parser.add_argument("id", help="job id")
        return parser

    def _cmd_jobs(self, argv: list[str]) -> Any:
        parser = _Parser("%pw jobs")
        parser.add_argument("--cluster")
        parser.add_argument("--state", help="e.g. RUNNING or QUEUED,RUNNING, active, finished")
        parser.add_argument("--limit", type=int, default=50)
        args = parser.parse_args(argv)
        return self.client.jobs(cluster=args.cluster, state=args.state, limit=args.limit)

    def _cmd_status(self, argv: list[str]) -> Job:
        return self.client.job(self._id_parser("status").parse_args(argv).id)

    def _cmd_logs(self, argv: list[str]) -> None:
        parser = self._id_parser("logs")
        parser.add_argument("--stderr", action="store_true", help="show stderr (default stdout)")
        parser.add_argument("--follow", action="store_true", help="keep streaming while it runs")
        args = parser.parse_args(argv)
        job = self.client.job(args.id)
        if args.follow:
            _follow(job)
            return
        stream = "stderr" if args.stderr else "stdout"
        (sys.stderr if args.stderr else sys.stdout).write(job.logs(stream))

    def _cmd_cancel(self, argv: list[str]) -> Job:
        job = self.client.job(self._id_parser("cancel").parse_args(argv).id).cancel()
        print(f"Cancelled: {job.summary()}", file=sys.stderr)
        return job

    def _cmd_hold(self, argv: list[str]) -> Job:
        return self.client.job(self._id_parser("hold").parse_args(argv).id).hold()

    def _cmd_release(self, argv: list[str]) -> Job:
        return self.client.job(self._id_parser("release").parse_args(argv).id).release()

    def _cmd_clusters(self, argv: list[str]) -> Any:
        _Parser("%pw clusters").parse_args(argv)
        return self.client.clusters()

    def _cmd_templates(self, argv: list[str]) -> Any:
        _Parser("%pw templates").parse_args(argv)
        return self.client.templates()


# What a submission takes that a suggestion does not (it only looks at script, name, cluster
# and the resources asked for).
SUGGEST_IGNORES = ("working_dir", "env", "after")


def _stopped(job: Job, what: str) -> str:
    try:
        job.refresh()
    except (PWLabError, KeyboardInterrupt):
        pass
    return (
        f"Stopped {what}: job {job.id} is {job.state.value} and keeps running "
        f"(%pw logs {job.id} --follow, %pw cancel {job.id})."
    )


def _follow(job: Job) -> Job:
    """Stream the logs into the cell; an interrupt stops following, never the job."""
    try:
        job.follow()
    except KeyboardInterrupt:
        print(_stopped(job, "following"), file=sys.stderr)
        return job
    if not job.succeeded:
        print(job.summary(), file=sys.stderr)
    return job


def _print_output(job: Job) -> None:
    out, err = job.logs("stdout"), job.logs("stderr")
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()
    if not job.succeeded:
        print(job.summary(), file=sys.stderr)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    ipython.register_magics(PWMagics(ipython))
