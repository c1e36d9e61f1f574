"""Slurm's command-line tools over a transport (this machine or SSH), as a backend class shared by
the ``slurm`` cluster kind (``slurm.py``) and ACTIVATE, which drives the same commands over SSH.

Every command is an argv list. Directives come only from validated fields and are passed as
sbatch options (which override ``#SBATCH`` lines in the user's script); the script itself goes
to sbatch on stdin. On a transport that starts commands ahead, they go into the script as
``#SBATCH`` lines instead where sbatch reads that the same way (``sbatch_directives``), so that
every such submit is the same command, started before it is needed.

Watching costs one ``squeue`` per interval for all jobs, plus one history query (``sacct``) only
for jobs that have left the queue. The ``squeue`` also carries a pending job's expected start
(the backfill scheduler's estimate, the same value ``squeue --start`` prints), and the history
query carries what a finished job used, so neither costs a command.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from ..errors import ClusterUnreachable, FieldError, InvalidRequest
from ..models import Partition, ResourceRequest
from ..states import TERMINAL_STATES, JobState
from ..transports import CommandResult, TransportError
from .arrays import array_usage, wanted_statuses
from .base import BackendSettings, JobStatus, SubmitRequest, SubmitResult, UsageRecord
from .cli import CommandLineBackend, CommandLineSettings, last_line, leading_int
from .sbatch_directives import script_with_directives
from .slurm_accounting import SACCT_HISTORY_FIELDS, SACCT_USAGE_FIELDS, sacct_jobs, usage_record
from .slurm_common import (
    RATE_LIMIT_MARKERS,
    SBATCH_ERROR_FIELDS,
    SEP,
    TOKEN_PREFIX,
    UNREACHABLE_MARKERS,
    expand_pattern,
    parse_estimate,
    parse_time,
    submitted,
)
from .slurm_partitions import (
    SINFO_FIELDS,
    count_node,
    max_nodes,
    new_partition,
    parse_minutes,
    parse_partition_access,
    usable,
)
from .slurm_states import exit_code_from_sacct, exit_code_from_status, normalize

SQUEUE_FIELDS = [
    "JobArrayID",
    "ArrayJobID",
    "ArrayTaskID",
    "JobID",
    "State",
    "Reason",
    "exit_code",
    "StartTime",
    "EndTime",
    "Comment",
    "WorkDir",
    "STDOUT",
    "STDERR",
]


class SlurmSettings(CommandLineSettings):
    history: Literal["auto", "sacct", "sacct-c", "none"] = Field(
        default="auto",
        description="Where finished jobs that left squeue are looked up: sacct (slurmdbd), "
        "sacct -c (jobcomp/filetxt), or auto (sacct, then sacct -c).",
    )


class SlurmCommandLineBackend(CommandLineBackend):
    settings_class = SlurmSettings
    settings: SlurmSettings
    unreachable_markers = UNREACHABLE_MARKERS
    rate_limit_markers = RATE_LIMIT_MARKERS

    def __init__(self, settings: BackendSettings, context: Any) -> None:
        super().__init__(settings, context)
        self._history_mode = self.settings.history

    # Per cluster, not per class: it depends on where this cluster keeps its history.
    @property
    def measures_usage(self) -> bool:  # type: ignore[override]
        """Usage needs slurmdbd's sacct (job steps, MaxRSS); the job completion file
        (``sacct -c``) has none, and ``auto`` finds out at the first history query."""
        return self._history_mode in ("auto", "sacct")

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self) -> list[Partition]:
        fmt = SEP.join(SINFO_FIELDS)
        listing = await self.run_checked(["sinfo", "-h", "-N", "-o", fmt])
        partitions: dict[str, dict[str, Any]] = {}
        for line in listing.splitlines():
            fields = line.split(SEP)
            if len(fields) < len(SINFO_FIELDS):
                continue
            name, _node, cpus, mem, gres, state, limit, size, avail, cpu_states = fields[:10]
            default = name.endswith("*")
            name = name.rstrip("*")
            if name not in partitions:
                partitions[name] = new_partition(
                    name, default, parse_minutes(limit), max_nodes(size), avail
                )
            cpu_counts = cpu_states.split("/")  # allocated/idle/other/total
            count_node(
                partitions[name],
                idle=state.rstrip("*~#!%$@^-").lower() == "idle",
                cpus=leading_int(cpus),
                cpus_idle=leading_int(cpu_counts[1]) if len(cpu_counts) == 4 else 0,
                memory_mb=leading_int(mem),
                gres=gres,
            )
        for name, access in (await self._partition_access()).items():
            if name in partitions:
                partitions[name].update(access)
        mine = await self._user_associations()
        if mine is not None:
            for part in partitions.values():
                part["accounts"] = usable(part["accounts"], part["deny_accounts"], mine[0])
                part["qos"] = usable(part["qos"], part["deny_qos"], mine[1])
        return [Partition(**p) for p in partitions.values()]

    async def _user_associations(self) -> Optional[tuple[list[str], list[str]]]:
        """The accounts and QOS the user's associations in slurmdbd allow, so the forms offer
        *your* accounts; None on a cluster without slurmdbd (or one sacctmgr cannot ask)."""
        result = await self.run(
            [
                "sacctmgr",
                "--noheader",
                "--parsable2",
                "show",
                "associations",
                f"user={self.user}",
                "format=Account,QOS",
            ]
        )
        if result.returncode != 0:
            return None
        accounts: list[str] = []
        qos: list[str] = []
        for line in result.stdout.splitlines():
            account, _, names = line.partition("|")
            if account and account not in accounts:
                accounts.append(account)
            qos += [name for name in names.split(",") if name and name not in qos]
        return (accounts, qos) if accounts else None

    async def _partition_access(self) -> dict[str, dict[str, list[str]]]:
        """Who may use each partition (Allow/Deny Accounts and QOS): sinfo cannot say,
        ``scontrol show partition`` can. Only a restriction is kept; "ALL" means any."""
        result = await self.run(["scontrol", "show", "partition", "--oneliner"])
        if result.returncode != 0:
            return {}  # an older or locked-down scontrol: the form just offers free text
        return parse_partition_access(result.stdout)

    # -- submit ------------------------------------------------------------------------------

    @staticmethod
    def output_path(request: SubmitRequest, working_dir: str, kind: str) -> str:
        """Where Slurm writes the job's stdout (``out``) or stderr (``err``), as a pattern."""
        # '%' in a path would be read as a filename pattern: '%%' is a literal '%'.
        base = working_dir.replace("%", "%%").rstrip("/")
        # Our id too: two clusters sharing a home directory can hand out the same job number.
        stem = "pwlab-%A_%a" if request.resources.array else "pwlab-%j"
        return f"{base}/{stem}-{request.job_id}.{kind}"

    def sbatch_argv(self, request: SubmitRequest, working_dir: str) -> list[str]:
        """``sbatch --parsable`` and the options from validated fields only; each value is one
        argv element."""
        res = request.resources
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={request.name}",
            f"--nodes={res.nodes}",
            f"--ntasks={res.ntasks}",
            f"--cpus-per-task={res.cpus_per_task}",
            f"--chdir={working_dir}",
            f"--output={self.output_path(request, working_dir, 'out')}",
            f"--error={self.output_path(request, working_dir, 'err')}",
            f"--comment={TOKEN_PREFIX}{request.submit_token}",
        ]
        if res.partition:
            argv.append(f"--partition={res.partition}")
        if res.gpus:
            argv.append(f"--gpus={res.gpus}")
        if res.memory_mb is not None:
            argv.append(f"--mem={res.memory_mb}M")
        if res.time_limit_minutes is not None:
            argv.append(f"--time={res.time_limit_minutes}")
        if res.array:
            argv.append(f"--array={res.array}")
        if res.account:
            argv.append(f"--account={res.account}")
        if res.qos:
            argv.append(f"--qos={res.qos}")
        if request.after_native_ids:
            argv.append("--dependency=afterok:" + ":".join(request.after_native_ids))
        return argv

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        working_dir = await self.working_dir_path(request.working_dir)
        argv = self.sbatch_argv(request, working_dir)
        script, in_script = request.script, None
        if self.transport.starts_ahead:
            in_script = await self._options_in_script(request, argv[2:])
            if in_script is not None:  # the same submit, by a command started ahead
                argv, script = argv[:2], in_script
        # Never re-sent after a dropped connection: a lost answer is found by its token.
        # Slurm creates the job's output files (and runs the job) with sbatch's umask.
        result = await self.run(
            argv,
            input=script,
            env=request.env,
            idempotent=False,
            umask=self.settings.umask,
            cwd=working_dir,
            start_ahead=in_script is not None,
        )
        if result.returncode != 0:
            raise _sbatch_error(result.stderr or result.stdout)
        # The last line: a login shell may print before it (a session started ahead).
        native_id = last_line(result.stdout).split(";", 1)[0]
        if not native_id.isdigit():
            raise ClusterUnreachable(
                self.context.cluster_id, f"unexpected sbatch output {native_id!r}"
            )
        return submitted(
            native_id,
            self.output_path(request, working_dir, "out"),
            self.output_path(request, working_dir, "err"),
            working_dir,
            request.resources,
        )

    async def _options_in_script(self, request: SubmitRequest, options: list[str]) -> Optional[str]:
        """The script with ``options`` as ``#SBATCH`` lines, where sbatch reads that the same
        (``sbatch_directives``); None to keep them on the command line."""
        try:
            environment = await self.transport.environment_names(
                {**self.settings.env, **request.env}
            )
        except TransportError:  # not known: the command line is always right
            return None
        return script_with_directives(request.script, options, environment)

    # -- watching ----------------------------------------------------------------------------

    async def _squeue(self) -> list[dict[str, str]]:
        fmt = ",".join(f"{name}:{SEP}" for name in SQUEUE_FIELDS)
        listing = await self.run_checked(["squeue", "--me", "-t", "all", "-r", "-h", "-O", fmt])
        rows = []
        for line in listing.splitlines():
            values = line.split(SEP)
            if len(values) < len(SQUEUE_FIELDS):
                continue
            rows.append({k: v.strip() for k, v in zip(SQUEUE_FIELDS, values)})
        return rows

    @staticmethod
    def _status(row: dict[str, str]) -> JobStatus:
        reason = row["Reason"] if row["Reason"] not in ("None", "(null)", "") else None
        state = normalize(row["State"], reason)
        exit_code = None
        if state in TERMINAL_STATES and row["exit_code"].isdigit():
            exit_code = exit_code_from_status(int(row["exit_code"]))
        task = row["ArrayTaskID"] if row["ArrayTaskID"] not in ("N/A", "") else None
        status = JobStatus(
            state=state,
            raw_state=row["State"],
            reason=reason,
            exit_code=exit_code,
            started_at=parse_time(row["StartTime"]) if state is not JobState.QUEUED else None,
            ended_at=parse_time(row["EndTime"]) if state in TERMINAL_STATES else None,
            # A pending job's StartTime is the backfill scheduler's estimate (as squeue --start).
            estimated_start=parse_estimate(row["StartTime"]) if state is JobState.QUEUED else None,
        )
        if task is not None:
            array_job = row["ArrayJobID"]
            status.parent_native_id = array_job
            status.array_task = task
            for key, attr in (("STDOUT", "stdout_path"), ("STDERR", "stderr_path")):
                if row[key] not in ("", "N/A", "(null)"):
                    path = expand_pattern(row[key], row["JobID"], array_job, task)
                    setattr(status, attr, path)
        return status

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        wanted = set(native_ids)
        rows = await self._squeue()
        statuses = wanted_statuses(((row["JobArrayID"], self._status(row)) for row in rows), wanted)
        missing = [n for n in wanted if n not in statuses and n.isdigit()]
        if missing:
            statuses.update(await self._history(missing))
        return statuses

    async def _history(self, native_ids: list[str]) -> dict[str, JobStatus]:
        """Final states of jobs that already left squeue, from accounting or job completion.

        From slurmdbd the same query also brings what each job used (steps included: MaxRSS is
        on the step rows), so a job found here needs no separate usage query."""
        if self._history_mode == "none":
            return {}
        ids = ",".join(native_ids)
        result = CommandResult(1, "", "")
        if self._history_mode in ("auto", "sacct"):
            fmt = ",".join(SACCT_HISTORY_FIELDS)
            result = await self.run(["sacct", "-P", "-n", "-o", fmt, "-j", ids])
            if result.returncode != 0 and "accounting storage is disabled" in result.stderr:
                if self._history_mode == "auto":
                    self._history_mode = "sacct-c"
            if result.returncode == 0:
                return self._history_statuses(result.stdout, SACCT_HISTORY_FIELDS, native_ids)
        if self._history_mode == "sacct-c":
            fields = ["JobID", "State", "ExitCode", "Start", "End"]
            result = await self.run(["sacct", "-c", "-P", "-n", "-o", ",".join(fields), "-j", ids])
            return self._history_statuses(result.stdout, fields, native_ids)
        return {}

    @staticmethod
    def _history_statuses(
        listing: str, fields: list[str], native_ids: list[str]
    ) -> dict[str, JobStatus]:
        found: dict[str, JobStatus] = {}
        with_usage = "MaxRSS" in fields
        for native, (row, steps) in sacct_jobs(listing, fields, native_ids).items():
            state = normalize(row["State"])
            if state is JobState.UNKNOWN:
                continue  # a record sacct could not parse: better no answer than a wrong one
            terminal = state in TERMINAL_STATES
            found[native] = JobStatus(
                state=state,
                raw_state=row["State"],
                exit_code=exit_code_from_sacct(row["ExitCode"]) if terminal else None,
                started_at=parse_time(row["Start"]),
                ended_at=parse_time(row["End"]),
                usage=usage_record(row, steps) if with_usage and terminal else None,
            )
        return found

    async def usage(self, native_ids: list[str]) -> dict[str, UsageRecord]:
        """What finished jobs used: one ``sacct`` (steps included) for all of them. A job whose
        allocation row is missing or not yet ended is left out (asked again next time); an
        array job asked by its own id gets its tasks' figures (see :func:`array_usage`)."""
        if not native_ids or not self.measures_usage:
            return {}
        result = await self.run(
            [
                "sacct",
                "-P",
                "-n",
                "-j",
                ",".join(native_ids),
                "-o",
                ",".join(SACCT_USAGE_FIELDS),
            ]
        )
        if result.returncode != 0:
            if "accounting storage is disabled" in result.stderr and self._history_mode == "auto":
                self._history_mode = "sacct-c"  # no slurmdbd: nothing to measure with
            return {}
        parents = {n for n in native_ids if n.isdigit()}
        # An array job has no row of its own: its tasks (123_4), and its never-started rest
        # (123_[5-9]) while pending or once cancelled.
        tasks_of: dict[str, set[str]] = {}
        for line in result.stdout.splitlines():
            task = line.split("|", 1)[0].split(".", 1)[0]
            parent, sep, _index = task.partition("_")
            if sep and parent in parents:
                tasks_of.setdefault(parent, set()).add(task)
        asked = [*native_ids, *(t for tasks in tasks_of.values() for t in tasks)]
        records: dict[str, UsageRecord] = {}
        for native, (row, steps) in sacct_jobs(result.stdout, SACCT_USAGE_FIELDS, asked).items():
            record = usage_record(row, steps)
            if record is not None:
                records[native] = record
        found = {n: records[n] for n in native_ids if n in records}
        for parent, tasks in tasks_of.items():
            if parent not in found and all(t in records for t in tasks):
                found[parent] = array_usage([records[t] for t in sorted(tasks)])
        return found

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        for row in await self._squeue():
            if row["Comment"] == f"{TOKEN_PREFIX}{submit_token}":
                array_task = row["ArrayTaskID"] not in ("N/A", "")
                native = row["ArrayJobID"] if array_task else row["JobArrayID"]
                paths = [
                    None
                    if array_task or row[k] in ("", "N/A")
                    else expand_pattern(row[k], row["JobID"], native, None)
                    for k in ("STDOUT", "STDERR")
                ]
                return SubmitResult(
                    native_id=native,
                    stdout_path=paths[0],
                    stderr_path=paths[1],
                    working_dir=row["WorkDir"] or None,
                )
        return None

    # -- control -----------------------------------------------------------------------------

    async def cancel(self, native_id: str) -> None:
        await self.run_control(["scancel", native_id])

    async def hold(self, native_id: str) -> None:
        # uhold: a user hold the user can release again (root's plain hold would be an admin hold).
        await self.run_control(["scontrol", "uhold", native_id])

    async def release(self, native_id: str) -> None:
        await self.run_control(["scontrol", "release", native_id])

    def check_resources(self, resources: ResourceRequest, partition: Partition) -> list[FieldError]:
        return []


def _sbatch_error(message: str) -> InvalidRequest:
    errors = [ln for ln in message.splitlines() if "error:" in ln]
    text = last_line((errors[0] if errors else message).replace("sbatch: error: ", ""))
    lowered = text.lower()
    for marker, field in SBATCH_ERROR_FIELDS:
        if marker in lowered:
            return InvalidRequest.for_field(field, f"Slurm refused the job: {text}")
    return InvalidRequest.for_field("script", f"Slurm refused the job: {text}")
