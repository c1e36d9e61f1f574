"""The ``sge`` backend: (Son of) Grid Engine's command-line tools over a transport.

Watching costs one ``qstat -xml -u <user>`` per interval for all jobs; a job that left qstat is
read once from ``qacct -j``, whose record also says what the job used (wall clock, CPU time,
peak virtual memory, slots), so the efficiency card costs no extra command. Jobs in an error
state (``Eqw``) are shown HELD with Grid Engine's reason, so the user can see why and cancel or
release (clear) them; they never hang silently.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any, ClassVar, Optional

from pydantic import Field

from ..errors import ClusterUnreachable, FieldError
from ..models import Partition, ResourceRequest
from ..privacy import private_dir, write_json_private
from ..states import JobState
from .arrays import aggregate, array_usage
from .base import BackendSettings, JobStatus, SubmitRequest, SubmitResult, UsageRecord
from .cli import CommandLineBackend, CommandLineSettings, leading_int
from .sge_parsing import (
    UNREACHABLE_MARKERS,
    category_requests,
    cluster_queue_usage,
    expand_tasks,
    hms,
    host_memory,
    iso_time,
    parse_hms,
    parse_qacct,
    parse_scheduling_info,
    qacct_memory_mb,
    qacct_seconds,
    qacct_time,
    qconf_fields,
    qsub_error,
    request_memory_mb,
    sge_seconds,
    sge_state,
)

TOKEN_CONTEXT = "pwlab_token"  # noqa: S105 - a job context key, not a secret
# A Grid Engine array spec: n[-m[:s]] (lists are not supported by qsub -t).
SGE_ARRAY = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?(?:%(\d+))?$")
# qacct -j takes one job id per call (see SGEBackend.usage): how many one usage() call asks.
USAGE_LOOKUPS = 10

#: The folder of a working directory that holds job outputs (see SGEBackend.output_dir).
OUTPUT_DIR = "pwlab-output"
#: Runs `mkdir -p -- DIR` then the rest of its arguments (one remote command, argv-quoted). A
#: folder that cannot be made is left to Grid Engine to report: the job goes to its error state
#: with the reason (shown to the user), as an unwritable working directory always did.
MKDIR_THEN = ["sh", "-c", 'mkdir -p -- "$1" 2>/dev/null; shift; exec "$@"', "sh"]


class SGESettings(CommandLineSettings):
    parallel_environment: str = Field(
        default="smp", description="PE used for requests of more than one slot."
    )
    default_queue: Optional[str] = None
    gpu_resource: Optional[str] = Field(
        default=None, description="Consumable complex for GPUs (e.g. 'gpu'); none: no GPUs."
    )
    memory_resource: Optional[str] = Field(
        default=None, description="Per-slot memory complex (e.g. 'h_vmem'); none: no memory."
    )


class SGEBackend(CommandLineBackend):
    kind: ClassVar[str] = "sge"
    measures_usage: ClassVar[bool] = True
    settings_class = SGESettings
    settings: SGESettings
    unreachable_markers = UNREACHABLE_MARKERS

    def __init__(self, settings: BackendSettings, context: Any) -> None:
        super().__init__(settings, context)
        unsupported = {"qos"}  # Grid Engine has no QOS; its account string is -A
        if self.settings.gpu_resource is None:
            unsupported.add("gpus")
        if self.settings.memory_resource is None:
            unsupported.add("memory_mb")
        self.unsupported_fields = frozenset(unsupported)
        # What qstat/qacct cannot tell us, remembered across restarts: which jobs we cancelled
        # (qacct shows a qdel like a crash) and which we held (qstat shows a job waiting on
        # -hold_jid as held too).
        self._memory_file = self.context.state_dir / "sge-jobs.json"
        self._cancelled: set[str] = set()
        self._held: set[str] = set()

    async def start(self) -> None:
        try:
            memory = json.loads(self._memory_file.read_text())
            self._cancelled = set(memory.get("cancelled", []))
            self._held = set(memory.get("held", []))
        except (FileNotFoundError, ValueError):
            pass

    def _remember(self) -> None:
        private_dir(self._memory_file.parent)
        memory = {"cancelled": sorted(self._cancelled), "held": sorted(self._held)}
        write_json_private(self._memory_file, memory)

    # -- discovery ---------------------------------------------------------------------------

    async def discover(self) -> list[Partition]:
        queues = (await self.run_checked(["qconf", "-sql"])).split()
        usage = cluster_queue_usage(await self.run_checked(["qstat", "-g", "c"]))
        hosts = host_memory(await self.run_checked(["qhost"]))
        partitions = []
        for index, queue in enumerate(queues):
            conf = qconf_fields(await self.run_checked(["qconf", "-sq", queue]))
            queue_hosts = [
                h
                for h in hosts
                if h in conf.get("hostlist", "") or conf.get("hostlist", "").startswith("@")
            ] or list(hosts)
            slots = leading_int(conf.get("slots", "1").split(",")[0])
            used, available, total = usage.get(queue, (0, slots, slots))
            partitions.append(
                Partition(
                    name=queue,
                    default=(queue == self.settings.default_queue)
                    if self.settings.default_queue
                    else index == 0,
                    max_time_minutes=parse_hms(conf.get("h_rt", "INFINITY")),
                    max_nodes=1,  # a $pe_slots parallel environment stays on one host
                    nodes_total=len(queue_hosts),
                    nodes_idle=len(queue_hosts) if used == 0 else 0,
                    cpus_per_node=slots,
                    cpus_idle=available,
                    memory_mb_per_node=max((hosts[h] for h in queue_hosts), default=0),
                    gpus_per_node=0,
                    state="up" if total else "inactive",
                )
            )
        return partitions

    def check_name(self, name: str) -> Optional[str]:
        if _job_name(name) != name:
            return (
                "Grid Engine job names cannot contain spaces or / : @ \\ * ? "
                "and cannot start with a digit"
            )
        return None

    def check_resources(self, resources: ResourceRequest, partition: Partition) -> list[FieldError]:
        errors = []
        if resources.array and not SGE_ARRAY.match(resources.array):
            errors.append(
                FieldError(
                    "resources.array",
                    "Grid Engine takes one range: n, n-m or n-m:step (optionally %limit)",
                )
            )
        return errors

    # -- submit ------------------------------------------------------------------------------

    def output_dir(self, working_dir: str) -> str:
        """Where a job's -o/-e files go: a folder of ours in the working directory, created with
        the cluster's output_umask (0700 by default). Grid Engine creates output files with its
        execution daemon's umask, not the submitter's: the folder is what keeps them private."""
        return f"{working_dir.rstrip('/')}/{OUTPUT_DIR}"

    def qsub_argv(self, request: SubmitRequest, working_dir: str) -> list[str]:
        res = request.resources
        out_dir = self.output_dir(working_dir)
        # Our id too: two clusters sharing a home directory can hand out the same job number.
        stem = (
            f"pwlab-$JOB_ID.$TASK_ID-{request.job_id}"
            if res.array
            else f"pwlab-$JOB_ID-{request.job_id}"
        )
        argv = [
            "qsub",
            "-terse",
            "-S",
            "/bin/bash",
            "-N",
            _job_name(request.name),
            "-wd",
            working_dir,
            "-o",
            f"{out_dir}/{stem}.out",
            "-e",
            f"{out_dir}/{stem}.err",
            "-ac",
            f"{TOKEN_CONTEXT}={request.submit_token}",
        ]
        if res.partition:
            argv += ["-q", res.partition]
        slots = res.cpus
        if slots > 1:
            argv += ["-pe", self.settings.parallel_environment, str(slots)]
        if res.time_limit_minutes is not None:
            argv += ["-l", f"h_rt={hms(res.time_limit_minutes)}"]
        if res.gpus and self.settings.gpu_resource:
            argv += ["-l", f"{self.settings.gpu_resource}={res.gpus}"]
        if res.memory_mb is not None and self.settings.memory_resource:
            per_slot = math.ceil(res.memory_mb / slots)
            argv += ["-l", f"{self.settings.memory_resource}={per_slot}M"]
        if res.array:
            match = SGE_ARRAY.match(res.array)
            assert match is not None  # checked in check_resources
            argv += ["-t", res.array.split("%")[0]]
            if match.group(4):
                argv += ["-tc", match.group(4)]
        if res.account:
            argv += ["-A", res.account]
        if request.after_native_ids:
            argv += ["-hold_jid", ",".join(request.after_native_ids)]
        if request.env:
            # Names only: qsub takes each value from its own environment, so values with
            # commas or quotes arrive intact (-v NAME=VALUE would split them at commas).
            argv += ["-v", ",".join(request.env)]
        return argv

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        working_dir = await self.working_dir_path(request.working_dir)
        argv = self.qsub_argv(request, working_dir)
        # One command: make the output folder (with the umask), then qsub. The script itself
        # sets the umask too: Grid Engine starts jobs with its daemon's, not the submitter's.
        result = await self.run(
            [*MKDIR_THEN, self.output_dir(working_dir), *argv],
            input=with_umask(request.script, self.settings.umask),
            env=request.env,
            idempotent=False,
            umask=self.settings.umask,
            cwd=working_dir,
        )
        if result.returncode != 0:
            raise qsub_error(result.stderr or result.stdout)
        native_id = result.stdout.strip().split(".", 1)[0]
        if not native_id.isdigit():
            raise ClusterUnreachable(
                self.context.cluster_id, f"unexpected qsub output {native_id!r}"
            )
        paths: list[Optional[str]] = [None, None]
        if not request.resources.array:
            paths = [
                argv[argv.index(flag) + 1].replace("$JOB_ID", native_id) for flag in ("-o", "-e")
            ]
        return SubmitResult(
            native_id=native_id,
            stdout_path=paths[0],
            stderr_path=paths[1],
            working_dir=working_dir,
            state=JobState.QUEUED,
            raw_state="qw",
        )

    # -- watching ----------------------------------------------------------------------------

    async def _qstat(self) -> list[dict[str, str]]:
        text = await self.run_checked(["qstat", "-xml", "-u", self.user])
        root = ET.fromstring(text)  # noqa: S314 - output of our own scheduler command
        rows = []
        for job in root.iter("job_list"):
            row = {child.tag: (child.text or "").strip() for child in job}
            rows.append(row)
        return rows

    async def poll(self, native_ids: list[str]) -> dict[str, JobStatus]:
        wanted = set(native_ids)
        parents = {n.split(".", 1)[0] for n in wanted}
        statuses: dict[str, JobStatus] = {}
        tasks_of: dict[str, list[JobStatus]] = {}
        errored: list[str] = []
        for row in await self._qstat():
            number = row.get("JB_job_number", "")
            if number not in parents:
                continue
            code = row.get("state", "")
            state = sge_state(code)
            reason = None
            if state is JobState.HELD and "E" not in code and number not in self._held:
                # Held by a -hold_jid dependency, not by the user.
                state, reason = JobState.QUEUED, "Dependency"
            elif state is JobState.HELD and "E" not in code:
                reason = "JobHeldUser"
            started = iso_time(row.get("JAT_start_time"))
            if "E" in code:
                errored.append(number)
            tasks = row.get("tasks")
            if not tasks:
                statuses[number] = JobStatus(
                    state=state, raw_state=code, reason=reason, started_at=started
                )
                continue
            for task in expand_tasks(tasks):
                status = JobStatus(
                    state=state,
                    raw_state=code,
                    reason=reason,
                    started_at=started,
                    parent_native_id=number,
                    array_task=task,
                )
                tasks_of.setdefault(number, []).append(status)
                statuses[f"{number}.{task}"] = status
        for number in set(errored):
            reason = await self._error_reason(number)
            for key, status in statuses.items():
                if key.split(".", 1)[0] == number and status.raw_state and "E" in status.raw_state:
                    status.reason = reason
        missing = [n for n in parents if n not in statuses and n not in tasks_of]
        for number in missing:
            statuses.update(await self._accounting(number, wanted))
        # Tasks of a still-listed array that already finished are in the accounting too.
        for number in [n for n in tasks_of if any(w.startswith(f"{n}.") for w in wanted)]:
            listed = {f"{number}.{t.array_task}" for t in tasks_of[number]}
            if any(w.startswith(f"{number}.") and w not in listed for w in wanted):
                for key, status in (await self._accounting(number, wanted)).items():
                    if key not in listed and key != number:
                        statuses[key] = status
                        tasks_of[number].append(status)
        for number, task_statuses in tasks_of.items():
            if number in wanted:
                statuses[number] = aggregate(task_statuses)
        return {k: v for k, v in statuses.items() if k in wanted or v.parent_native_id in wanted}

    async def _error_reason(self, number: str) -> str:
        result = await self.run(["qstat", "-j", number])
        for line in result.stdout.splitlines():
            if line.startswith("error reason"):
                return "Error: " + line.split(":", 1)[1].strip()
        return "Error state (Eqw): see qstat -j"

    async def _accounting(self, number: str, wanted: set[str]) -> dict[str, JobStatus]:
        result = await self.run(["qacct", "-j", number])
        if result.returncode != 0:
            return {}  # not flushed to the accounting file yet: ask again next time
        found: dict[str, JobStatus] = {}
        tasks: list[JobStatus] = []
        for record in parse_qacct(result.stdout):
            status = self._final_status(number, record)
            task = record.get("taskid", "undefined")
            if task.isdigit():
                status.parent_native_id, status.array_task = number, task
                found[f"{number}.{task}"] = status
                tasks.append(status)
            else:
                found[number] = status
        if tasks and number in wanted:
            found[number] = aggregate(tasks)
            usages = [t.usage for t in tasks if t.usage is not None]
            if usages:
                found[number].usage = replace(array_usage(usages), source="qacct")
        return found

    def _final_status(self, number: str, record: dict[str, str]) -> JobStatus:
        failed = leading_int(record.get("failed", "0"))
        exit_status = leading_int(record.get("exit_status", "0"))
        reason = None
        if number in self._cancelled:
            state = JobState.CANCELLED
        elif failed == 0:
            state = JobState.COMPLETED if exit_status == 0 else JobState.FAILED
            reason = None if exit_status == 0 else "NonZeroExitCode"
        else:
            failed_text = record.get("failed", "")
            state = JobState.TIMEOUT if "h_rt" in failed_text else JobState.FAILED
            reason = failed_text
        return JobStatus(
            state=state,
            raw_state=f"failed={failed}",
            reason=reason,
            exit_code=exit_status,
            started_at=qacct_time(record.get("start_time", "")),
            ended_at=qacct_time(record.get("end_time", "")),
            usage=self._usage(record),
        )

    def _usage(self, record: dict[str, str]) -> UsageRecord:
        """What one qacct record says the job (or array task) used, and what it asked for.

        ``maxvmem`` is the peak *virtual* memory Grid Engine sampled (it has no RSS peak it
        prints reliably: 8.1.9's ``ru_maxrss`` is KiB printed as if bytes), so it reads somewhat
        higher than Slurm's MaxRSS for the same program."""
        slots = leading_int(record.get("slots", "")) or None
        requests = category_requests(record.get("category", ""))
        requested = None
        if self.settings.memory_resource and self.settings.memory_resource in requests:
            per_slot = request_memory_mb(requests[self.settings.memory_resource])
            requested = per_slot * (slots or 1) if per_slot is not None else None
        gpus = None
        if self.settings.gpu_resource and self.settings.gpu_resource in requests:
            gpus = leading_int(requests[self.settings.gpu_resource])
        elapsed = qacct_seconds(record.get("ru_wallclock", ""))
        return UsageRecord(
            source="qacct",
            elapsed_seconds=round(elapsed) if elapsed is not None else None,
            cpu_seconds=qacct_seconds(record.get("cpu", "")),
            max_memory_mb=qacct_memory_mb(record.get("maxvmem", "")),
            cpus=slots,
            requested_memory_mb=requested,
            time_limit_seconds=sge_seconds(requests["h_rt"]) if "h_rt" in requests else None,
            gpus=gpus,
        )

    async def usage(self, native_ids: list[str]) -> dict[str, UsageRecord]:
        """What finished jobs used, from ``qacct -j``. Rarely needed: the poll's own qacct
        already carries it for every job it sees end.

        qacct cannot batch by id: ``-j`` takes one job id (or a job *name* pattern), and the
        only batched form, all of our jobs (``qacct -o USER -j``), reads and prints the whole
        accounting file, which grows with every job ever run. So one ``qacct -j`` per job
        (~60 ms each), at most ``USAGE_LOOKUPS`` per call; the rest are asked next time."""
        wanted = set(native_ids)
        numbers = list(dict.fromkeys(n.split(".", 1)[0] for n in native_ids))
        found: dict[str, UsageRecord] = {}
        for number in numbers[:USAGE_LOOKUPS]:
            result = await self.run(["qacct", "-j", number])
            if result.returncode != 0:
                continue  # not in the accounting file yet
            tasks: list[UsageRecord] = []
            for record in parse_qacct(result.stdout):
                task = record.get("taskid", "undefined")
                usage = self._usage(record)
                if task.isdigit():
                    tasks.append(usage)
                    if f"{number}.{task}" in wanted:
                        found[f"{number}.{task}"] = usage
                elif number in wanted:
                    found[number] = usage
            if tasks and number in wanted:
                found[number] = replace(array_usage(tasks), source="qacct")
        return found

    async def wait_details(self, native_id: str) -> list[str]:
        """The "scheduling info" of ``qstat -j`` (the dev cluster and most sites set
        ``schedd_job_info true``; without it Grid Engine says nothing here)."""
        result = await self.run(["qstat", "-j", native_id.split(".", 1)[0]])
        if result.returncode != 0:
            return []
        return parse_scheduling_info(result.stdout)

    async def find_by_token(self, submit_token: str) -> Optional[SubmitResult]:
        for row in await self._qstat():
            number = row.get("JB_job_number", "")
            detail = await self.run(["qstat", "-j", number])
            if f"{TOKEN_CONTEXT}={submit_token}" in detail.stdout:
                return SubmitResult(native_id=number)
        return None

    # -- control -----------------------------------------------------------------------------

    async def cancel(self, native_id: str) -> None:
        self._cancelled.add(native_id.split(".", 1)[0])
        self._remember()
        if "." in native_id:
            number, task = native_id.split(".", 1)
            await self.run_control(["qdel", number, "-t", task])
        else:
            await self.run_control(["qdel", native_id])

    async def hold(self, native_id: str) -> None:
        await self.run_control(["qhold", native_id])
        self._held.add(native_id)
        self._remember()

    async def release(self, native_id: str) -> None:
        # Releasing also clears an error state (Eqw), so the job is tried again.
        await self.run(["qmod", "-cj", native_id])
        await self.run_control(["qrls", native_id])
        self._held.discard(native_id)
        self._remember()

    def array_task_paths(
        self, parent_native_id: str, task: str, working_dir: Optional[str], parent_job_id: str
    ) -> tuple[Optional[str], Optional[str]]:
        if not working_dir:
            return None, None
        stem = f"{self.output_dir(working_dir)}/pwlab-{parent_native_id}.{task}-{parent_job_id}"
        return f"{stem}.out", f"{stem}.err"


def with_umask(script: str, umask: int) -> str:
    """``script`` with ``umask NNN`` as its first command: after the ``#!`` line and the
    comment block (``#$`` directives) at its top, which Grid Engine still reads."""
    lines = script.splitlines(keepends=True)
    at = 0
    while at < len(lines) and (lines[at].startswith("#") or not lines[at].strip()):
        at += 1
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, f"umask {umask:03o}\n")
    return "".join(lines)


def _job_name(name: str) -> str:
    # Grid Engine refuses names with these characters (and a leading digit is not allowed).
    cleaned = re.sub(r"[\s/:@\\*?]", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"j{cleaned}"
