"""The ``slurm`` backend: Slurm's command-line tools over a transport (this machine or SSH).

Every command is an argv list. Directives come only from validated fields and are passed as
sbatch options (which override ``#SBATCH`` lines in the user's script); the script itself goes
to sbatch on stdin. Watching costs one ``squeue`` per interval for all jobs, plus one history
query (``sacct``) only for jobs that have left the queue. The ``squeue`` also carries a pending
job's expected start (the backfill scheduler's estimate, the same value ``squeue --start``
prints), and the history query carries what a finished job used, so neither costs a command.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field

from ..errors import ClusterUnreachable, FieldError, InvalidRequest
from ..models import Partition, ResourceRequest
from ..states import TERMINAL_STATES, JobState
from ..transports import (
    CommandResult,
)
from .base import BackendSettings, JobStatus, SubmitRequest, SubmitResult, UsageRecord
from .cli import CommandLineBackend, CommandLineSettings, last_line, leading_int
from .slurm_states import exit_code_from_sacct, exit_code_from_status, normalize

SEP = "\x1f"  # ASCII unit separator: cannot occur in the values we read
TOKEN_PREFIX = "pwlab:"  # noqa: S105 - a marker in --comment, not a secret
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
# sacct fields for a finished job's usage. Without -X: MaxRSS is only on the step rows.
SACCT_USAGE_FIELDS = [
    "JobID",
    "ElapsedRaw",
    "TotalCPU",
    "MaxRSS",
    "ReqMem",
    "AllocCPUS",
    "TimelimitRaw",
    "AllocTRES",
    "State",
]
# The history query: final state and usage in one command (the first five as with -X before).
SACCT_HISTORY_FIELDS = ["JobID", "State", "ExitCode", "Start", "End", *SACCT_USAGE_FIELDS[1:-1]]
SINFO_FIELDS = ["%P", "%N", "%c", "%m", "%G", "%t", "%l", "%s", "%a", "%C"]
# stderr of Slurm commands that means "the controller could not be asked", not "you asked wrong".
UNREACHABLE_MARKERS = (
    "unable to contact slurm controller",
    "socket timed out",
    "zero bytes were transmitted",
    "slurm_load_jobs error: unable",
    "connection refused",
    "communication connection failure",
)
# What Slurm 23.02+ prints when rl_enable refuses a user's RPC (SLURMCTLD_COMMUNICATIONS_BACKOFF:
# "Rate limit exceeded, please retry momentarily").
RATE_LIMIT_MARKERS = ("rate limit exceeded",)
# sbatch error text -> the request field it is about.
SBATCH_ERROR_FIELDS = (
    # Before "partition": "Invalid account or account/partition combination specified".
    ("invalid account", "resources.account"),
    ("invalid qos", "resources.qos"),
    ("invalid partition", "resources.partition"),
    ("partition", "resources.partition"),
    ("time limit", "resources.time_limit_minutes"),
    ("gres", "resources.gpus"),
    ("gpu", "resources.gpus"),
    ("memory", "resources.memory_mb"),
    ("node count", "resources.nodes"),
    ("cpu count", "resources.cpus_per_task"),
    ("dependency", "after"),
    ("array", "resources.array"),
    ("chdir", "working_dir"),
)


class SlurmSettings(CommandLineSettings):
    history: Literal["auto", "sacct", "sacct-c", "none"] = Field(
        default="auto",
        description="Where finished jobs that left squeue are looked up: sacct (slurmdbd), "
        "sacct -c (jobcomp/filetxt), or auto (sacct, then sacct -c).",
    )


def parse_time(value: str) -> Optional[datetime]:
    if not value or value in ("N/A", "Unknown", "None", "(null)"):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc)
    except ValueError:
        return None


def parse_estimate(value: str, now: Optional[datetime] = None) -> Optional[datetime]:
    """A pending job's StartTime as an estimate: only a time still ahead counts (``N/A``,
    ``Unknown``, 0 or a time already past mean the scheduler has no estimate)."""
    when = parse_time(value)
    if when is None or when.year < 2000:
        return None
    return when if when > (now or datetime.now(timezone.utc)) else None


def parse_cpu_time(value: str) -> Optional[float]:
    """sacct's TotalCPU (``MM:SS.mmm``, ``HH:MM:SS``, ``D-HH:MM:SS``) in seconds."""
    value = value.strip()
    if not value:
        return None
    days = 0
    try:
        if "-" in value:
            day_part, value = value.split("-", 1)
            days = int(day_part)
        seconds = 0.0
        for part in value.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return days * 86400 + seconds


MEMORY_UNITS_MB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


def parse_memory_mb(value: str, bare_unit_mb: float) -> tuple[Optional[float], str]:
    """sacct memory (``323836K``, ``500M``, ``2G``; older Slurm ``4000Mc``/``4000Mn``) in MiB
    and its scope: "" (the whole job), "c" (per CPU) or "n" (per node). A number without a
    unit is in ``bare_unit_mb`` MiB (bytes for MaxRSS, MiB for ReqMem)."""
    match = re.fullmatch(r"([\d.]+)([KMGTP]?)([nc]?)", value.strip())
    if not match:
        return None, ""
    number, unit, scope = match.groups()
    scale = MEMORY_UNITS_MB[unit] if unit else bare_unit_mb
    try:
        return float(number) * scale, scope
    except ValueError:
        return None, ""


def tres_count(tres: str, name: str) -> Optional[int]:
    """``billing=2,cpu=2,gres/gpu=1,node=1`` -> the count of ``name`` (None: not listed).
    For ``gres/gpu`` the untyped total wins over typed entries (``gres/gpu:tesla=1``)."""
    total: Optional[int] = None
    typed = 0
    for item in tres.split(","):
        key, _, count = item.partition("=")
        if not count.isdigit():
            continue
        if key == name:
            total = int(count)
        elif key.startswith(f"{name}:"):
            typed += int(count)
    if total is None and typed:
        return typed
    return total


def sacct_jobs(
    listing: str, fields: list[str], native_ids: list[str]
) -> dict[str, tuple[dict[str, str], list[dict[str, str]]]]:
    """``sacct -P`` rows (steps included) grouped per asked job: (allocation row, step rows).
    An array parent asked as ``123`` gets no entry here: its tasks come as ``123_4``."""
    wanted = set(native_ids)
    jobs: dict[str, tuple[dict[str, str], list[dict[str, str]]]] = {}
    steps: dict[str, list[dict[str, str]]] = {}
    for line in listing.splitlines():
        values = line.split("|")
        if len(values) < len(fields):
            continue
        row = dict(zip(fields, values))
        job, dot, _step = row["JobID"].partition(".")
        if job not in wanted:
            continue
        if dot:
            steps.setdefault(job, []).append(row)
        else:
            jobs[job] = (row, [])
    for job, (row, _) in list(jobs.items()):
        jobs[job] = (row, steps.get(job, []))
    return jobs


def usage_record(allocation: dict[str, str], steps: list[dict[str, str]]) -> Optional[UsageRecord]:
    """What a finished job used, from its sacct allocation row and step rows; None while it (or
    one of its steps) still runs, or when sacct's record cannot be read."""
    if normalize(allocation["State"]) not in TERMINAL_STATES:
        return None
    if any(normalize(step["State"]) not in TERMINAL_STATES for step in steps):
        return None  # a step not yet recorded as ended: its MaxRSS may still grow
    tres = allocation.get("AllocTRES", "")
    cpus = int(allocation["AllocCPUS"]) if allocation.get("AllocCPUS", "").isdigit() else None
    nodes = tres_count(tres, "node") or 1
    requested, scope = parse_memory_mb(allocation.get("ReqMem", ""), 1.0)
    if requested is not None and scope == "c":
        requested *= cpus or 1
    elif requested is not None and scope == "n":
        requested *= nodes
    peaks = [parse_memory_mb(step.get("MaxRSS", ""), 1 / 2**20)[0] for step in steps]
    measured = [peak for peak in peaks if peak is not None]
    elapsed = allocation.get("ElapsedRaw", "")
    limit = allocation.get("TimelimitRaw", "")
    return UsageRecord(
        source="sacct",
        elapsed_seconds=int(elapsed) if elapsed.isdigit() else None,
        cpu_seconds=parse_cpu_time(allocation.get("TotalCPU", "")),
        max_memory_mb=round(max(measured), 1) if measured else None,
        cpus=cpus,
        requested_memory_mb=requested or None,
        time_limit_seconds=int(limit) * 60 if limit.isdigit() else None,
        # None when the accounting does not track gres/gpu (AccountingStorageTRES): not 0.
        gpus=tres_count(tres, "gres/gpu"),
    )


def array_usage(records: list[UsageRecord]) -> UsageRecord:
    """An array job's usage from its tasks': each figure for one task (the longest run, the
    largest peak), so it reads against one task's request. CPU time is left out: the tasks'
    sum over the longest task's run would not be one task's efficiency."""

    def largest(values: list[Optional[float]]) -> Optional[float]:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    elapsed = largest([r.elapsed_seconds for r in records])
    limit = largest([r.time_limit_seconds for r in records])
    cpus = largest([r.cpus for r in records])
    gpus = largest([r.gpus for r in records])
    return UsageRecord(
        source="sacct",
        elapsed_seconds=int(elapsed) if elapsed is not None else None,
        max_memory_mb=largest([r.max_memory_mb for r in records]),
        cpus=int(cpus) if cpus is not None else None,
        requested_memory_mb=largest([r.requested_memory_mb for r in records]),
        time_limit_seconds=int(limit) if limit is not None else None,
        gpus=int(gpus) if gpus is not None else None,
    )


def parse_minutes(value: str) -> Optional[int]:
    """Slurm durations (``30:00``, ``1:00:00``, ``2-00:00:00``, ``90``) in minutes."""
    value = value.strip()
    if not value or value.lower() in ("infinite", "unlimited", "n/a"):
        return None
    days = 0
    if "-" in value:
        day_part, value = value.split("-", 1)
        days = int(day_part)
    parts = [int(p) for p in value.split(":")] if value else [0]
    if len(parts) == 1:
        minutes = parts[0] if days == 0 else parts[0] * 60  # "D-HH" means hours
        seconds = 0
    elif len(parts) == 2:
        minutes, seconds = (parts[0], parts[1]) if days == 0 else (parts[0] * 60 + parts[1], 0)
    else:
        minutes, seconds = parts[0] * 60 + parts[1], parts[2]
    return days * 1440 + minutes + (1 if seconds else 0)


def parse_gpus(gres: str) -> tuple[int, list[str]]:
    """``gpu:tesla:2(S:0),shard:4`` -> (2, ["tesla"])."""
    count, types = 0, []
    for item in gres.split(","):
        item = item.split("(", 1)[0]
        fields = item.split(":")
        if fields[0] != "gpu":
            continue
        if fields[-1].isdigit():
            count += int(fields[-1])
        if len(fields) == 3:
            types.append(fields[1])
    return count, types


def new_partition(
    name: str,
    default: bool,
    max_time_minutes: Optional[int],
    max_nodes: Optional[int],
    state: str,
) -> dict[str, Any]:
    """An empty partition tally; :func:`count_node` adds each of its nodes."""
    return {
        "name": name,
        "default": default,
        "max_time_minutes": max_time_minutes,
        "max_nodes": max_nodes,
        "nodes_total": 0,
        "nodes_idle": 0,
        "cpus_per_node": 0,
        "cpus_idle": 0,
        "memory_mb_per_node": 0,
        "gpus_per_node": 0,
        "gpu_types": [],
        "state": state,
    }


def count_node(
    part: dict[str, Any],
    *,
    idle: bool,
    cpus: int,
    cpus_idle: int,
    memory_mb: int,
    gres: str,
) -> None:
    """Add one node to a partition tally (sizes are the largest node's: what a job can get)."""
    gpus, gpu_types = parse_gpus(gres)
    part["nodes_total"] += 1
    part["nodes_idle"] += int(idle)
    part["cpus_idle"] += cpus_idle
    part["cpus_per_node"] = max(part["cpus_per_node"], cpus)
    part["memory_mb_per_node"] = max(part["memory_mb_per_node"], memory_mb)
    part["gpus_per_node"] = max(part["gpus_per_node"], gpus)
    part["gpu_types"] = sorted(set(part["gpu_types"]) | set(gpu_types))


def expand_pattern(pattern: str, job_id: str, array_job: str, task: Optional[str]) -> str:
    """Resolve sbatch filename patterns the way Slurm does for the ones we use."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if code == "%":
                out.append("%")
            elif code == "j":
                out.append(job_id)
            elif code == "A":
                out.append(array_job)
            elif code == "a":
                out.append(task or "")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class SlurmBackend(CommandLineBackend):
    kind: ClassVar[str] = "slurm"
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
                    name, default, parse_minutes(limit), _max_nodes(size), avail
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

    def sbatch_argv(self, request: SubmitRequest, working_dir: str) -> list[str]:
        """sbatch options from validated fields only; each value is one argv element."""
        res = request.resources
        # '%' in a path would be read as a filename pattern: '%%' is a literal '%'.
        base = working_dir.replace("%", "%%").rstrip("/")
        # Our id too: two clusters sharing a home directory can hand out the same job number.
        stem = f"pwlab-%A_%a-{request.job_id}" if res.array else f"pwlab-%j-{request.job_id}"
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={request.name}",
            f"--nodes={res.nodes}",
            f"--ntasks={res.ntasks}",
            f"--cpus-per-task={res.cpus_per_task}",
            f"--chdir={working_dir}",
            f"--output={base}/{stem}.out",
            f"--error={base}/{stem}.err",
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
        working_dir = await self.existing_working_dir(request.working_dir)
        argv = self.sbatch_argv(request, working_dir)
        # Never re-sent after a dropped connection: a lost answer is found by its token.
        # Slurm creates the job's output files (and runs the job) with sbatch's umask.
        result = await self.run(
            argv,
            input=request.script,
            env=request.env,
            idempotent=False,
            umask=self.settings.umask,
        )
        if result.returncode != 0:
            raise _sbatch_error(result.stderr or result.stdout)
        native_id = result.stdout.strip().split(";", 1)[0]
        if not native_id.isdigit():
            raise ClusterUnreachable(
                self.context.cluster_id, f"unexpected sbatch output {native_id!r}"
            )
        stdout_path = stderr_path = None
        if not request.resources.array:
            options = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
            stdout_path = expand_pattern(options["--output"], native_id, native_id, None)
            stderr_path = expand_pattern(options["--error"], native_id, native_id, None)
        return SubmitResult(
            native_id=native_id,
            stdout_path=stdout_path,
            stderr_path=stderr_path,
            working_dir=working_dir,
            state=JobState.QUEUED,
            raw_state="PENDING",
        )

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
        statuses: dict[str, JobStatus] = {}
        tasks_of: dict[str, list[JobStatus]] = {}
        for row in rows:
            status = self._status(row)
            key = row["JobArrayID"]
            if status.parent_native_id is not None:
                tasks_of.setdefault(status.parent_native_id, []).append(status)
                if status.parent_native_id in wanted or key in wanted:
                    statuses[key] = status
            elif key in wanted:
                statuses[key] = status
        for parent, tasks in tasks_of.items():
            if parent in wanted:
                statuses[parent] = aggregate(tasks)
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


def aggregate(tasks: list[JobStatus]) -> JobStatus:
    """An array job's state from its tasks' states."""
    states = [t.state for t in tasks]
    started = [t.started_at for t in tasks if t.started_at]
    ended = [t.ended_at for t in tasks if t.ended_at]
    codes = [t.exit_code for t in tasks if t.exit_code is not None]
    done = sum(s in TERMINAL_STATES for s in states)
    reason = f"{done}/{len(tasks)} tasks done"
    if all(s in TERMINAL_STATES for s in states):
        bad = [s for s in states if s is not JobState.COMPLETED]
        state = bad[0] if bad else JobState.COMPLETED
        return JobStatus(
            state=state,
            raw_state=state.value,
            reason=reason,
            exit_code=max(codes) if codes else None,
            started_at=min(started) if started else None,
            ended_at=max(ended) if ended else None,
        )
    if any(s in (JobState.RUNNING, JobState.COMPLETING) for s in states):
        state = JobState.RUNNING
    elif any(s is JobState.QUEUED for s in states):
        state = JobState.QUEUED
    elif any(s is JobState.HELD for s in states):
        state = JobState.HELD
    else:
        state = next(s for s in states if s not in TERMINAL_STATES)
    return JobStatus(
        state=state,
        raw_state=state.value,
        reason=reason,
        started_at=min(started) if started else None,
    )


def _sbatch_error(message: str) -> InvalidRequest:
    errors = [ln for ln in message.splitlines() if "error:" in ln]
    text = last_line((errors[0] if errors else message).replace("sbatch: error: ", ""))
    lowered = text.lower()
    for marker, field in SBATCH_ERROR_FIELDS:
        if marker in lowered:
            return InvalidRequest.for_field(field, f"Slurm refused the job: {text}")
    return InvalidRequest.for_field("script", f"Slurm refused the job: {text}")


def scontrol_fields(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` of one ``scontrol --oneliner`` line (values have no spaces for
    the keys we read)."""
    fields = {}
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


def parse_partition_access(listing: str) -> dict[str, dict[str, list[str]]]:
    """Per partition, its account/QOS lists from ``scontrol show partition --oneliner``."""
    return {
        fields["PartitionName"]: partition_access(
            fields.get("AllowAccounts", ""),
            fields.get("DenyAccounts", ""),
            fields.get("AllowQos", ""),
            fields.get("DenyQos", ""),
        )
        for fields in map(scontrol_fields, listing.splitlines())
        if "PartitionName" in fields
    }


def partition_access(
    allow_accounts: str, deny_accounts: str, allow_qos: str, deny_qos: str
) -> dict[str, list[str]]:
    """A partition's account/QOS fields from Slurm's comma-separated lists."""
    return {
        "accounts": name_list(allow_accounts),
        "deny_accounts": name_list(deny_accounts),
        "qos": name_list(allow_qos),
        "deny_qos": name_list(deny_qos),
    }


def usable(allowed: list[str], denied: list[str], mine: list[str]) -> list[str]:
    """What a user may choose on a partition: their own names that the partition allows. When
    none of theirs is allowed, the partition's list stands (Slurm will say why it refuses)."""
    if not mine:
        return allowed
    choices = [name for name in (allowed or mine) if name in mine and name not in denied]
    return choices or allowed


def name_list(value: str) -> list[str]:
    """Slurm's comma-separated AllowAccounts-style list; ``ALL`` or nothing: no restriction."""
    if value.upper() in ("ALL", "", "(NULL)", "N/A"):
        return []
    return [name for name in value.split(",") if name]


def _max_nodes(size: str) -> Optional[int]:
    upper = size.split("-")[-1]
    return int(upper) if upper.isdigit() else None
