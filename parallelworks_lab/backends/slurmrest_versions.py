"""The shapes of the Slurm REST API (slurmrestd), one small adapter per OpenAPI version.

The backend in :mod:`.slurmrest` speaks in the neutral terms of :mod:`.slurmrest_records`
(:class:`JobDescription` in, :class:`JobRecord`, :class:`PartitionRecord`, :class:`NodeRecord`
out); an adapter knows how one data-parser version spells them:

* ``v0.0.38`` (Slurm 22.05): flat integers (``0`` or ``-1`` for "unset"), ``job_state`` a string,
  ``exit_code`` the raw wait status, ``environment`` an object, node count as ``"N"``.
* ``v0.0.40`` to ``v0.0.44`` (Slurm 23.11 to 25.11): numbers as ``{set, infinite, number}``,
  ``job_state`` a list (base state and flags), ``exit_code`` an object with ``return_code`` and
  ``signal``, ``environment`` a list of ``NAME=value`` strings, ``minimum_nodes``/``maximum_nodes``,
  GPUs as ``tres_per_job``, list endpoints with a trailing slash, "no change" as a warning.

Parsing is tolerant (an integer where an object is expected and the other way round are both
read), so a site's minor deviations do not break polling; request bodies are exact, and the tests
validate them against the published specs.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Optional

from .slurmrest_records import (
    JobDescription,
    JobRecord,
    JobsAnswer,
    NodeRecord,
    PartitionRecord,
    read_exit_code,
    read_list,
    read_number,
    read_reason,
    read_text,
    read_time,
    read_warnings,
)

NO_CHANGE_MARKER = "no job changes since"


# -- adapters ----------------------------------------------------------------------------------


class Adapter:
    """What every version shares; subclasses hold only their differences."""

    version: ClassVar[str]
    #: List endpoints end with '/' in the specs of the data-parser versions.
    list_suffix: ClassVar[str] = ""

    def path(self, what: str, job_id: Optional[str] = None) -> str:
        base = f"/slurm/{self.version}"
        if what in ("jobs", "nodes", "partitions", "ping"):
            return f"{base}/{what}{self.list_suffix}"
        if what == "submit":
            return f"{base}/job/submit"
        if what == "job":
            assert job_id is not None
            return f"{base}/job/{job_id}"
        if what == "history":
            assert job_id is not None
            return f"/slurmdb/{self.version}/job/{job_id}"
        raise ValueError(what)

    # requests

    def submit_body(self, job: JobDescription) -> dict[str, Any]:
        raise NotImplementedError

    def hold_body(self, hold: bool) -> dict[str, Any]:
        return {"hold": hold}

    # answers

    def parse_submit(self, body: Any) -> Optional[int]:
        if not isinstance(body, dict):
            return None
        for source in (body, body.get("result")):
            if isinstance(source, dict):
                job_id = read_number(source.get("job_id"))
                if job_id:
                    return job_id
        return None

    def parse_jobs(self, status_code: int, body: Any) -> JobsAnswer:
        if status_code == 304:
            return JobsAnswer([], unchanged=True)
        body = body if isinstance(body, dict) else {}
        unchanged = any(NO_CHANGE_MARKER in w.lower() for w in read_warnings(body))
        jobs = body.get("jobs")
        records = [self.parse_job(j) for j in jobs if isinstance(j, dict)] if jobs else []
        return JobsAnswer(
            records, unchanged=unchanged and not records, last_update=self.last_update(body)
        )

    def last_update(self, body: dict[str, Any]) -> Optional[int]:
        return None

    def parse_job(self, raw: dict[str, Any]) -> JobRecord:
        states = [s.upper() for s in read_list(raw.get("job_state"))]
        array_job = read_number(raw.get("array_job_id"))
        task = read_number(raw.get("array_task_id")) if array_job else None
        # A record standing for several pending tasks has no one expanded path.
        several = bool(array_job) and task is None
        stdout_expanded = "" if several else read_text(raw.get("stdout_expanded"))
        stderr_expanded = "" if several else read_text(raw.get("stderr_expanded"))
        return JobRecord(
            job_id=read_number(raw.get("job_id")) or 0,
            states=states,
            user_name=read_text(raw.get("user_name")),
            array_job_id=array_job or None,
            array_task_id=task,
            array_task_string=read_text(raw.get("array_task_string")) if array_job else "",
            reason=read_reason(raw.get("state_reason")),
            exit_code=read_exit_code(raw.get("exit_code")),
            submit_time=read_time(raw.get("submit_time")),
            start_time=read_time(raw.get("start_time")),
            end_time=read_time(raw.get("end_time")),
            comment=read_text(raw.get("comment")),
            stdout=stdout_expanded or read_text(raw.get("standard_output")) or None,
            stderr=stderr_expanded or read_text(raw.get("standard_error")) or None,
            paths_expanded=bool(stdout_expanded),
            working_dir=read_text(raw.get("current_working_directory")) or None,
        )

    def parse_history(self, body: Any) -> Optional[JobRecord]:
        """A finished job from slurmdbd (``/slurmdb/.../job/{id}``), where that is served."""
        jobs = body.get("jobs") if isinstance(body, dict) else None
        if not jobs or not isinstance(jobs[0], dict):
            return None
        raw = jobs[0]
        state, times, array = (
            _dict(raw.get("state")),
            _dict(raw.get("time")),
            _dict(raw.get("array")),
        )
        array_job = read_number(array.get("job_id"))
        return JobRecord(
            job_id=read_number(raw.get("job_id")) or 0,
            states=[s.upper() for s in read_list(state.get("current"))],
            user_name=read_text(raw.get("user")),
            array_job_id=array_job or None,
            array_task_id=read_number(array.get("task_id")) if array_job else None,
            reason=read_reason(state.get("reason")),
            exit_code=read_exit_code(raw.get("exit_code")),
            submit_time=read_time(times.get("submission")),
            start_time=read_time(times.get("start")),
            end_time=read_time(times.get("end")),
            comment=read_text(_dict(raw.get("comment")).get("job")),
        )

    def parse_partitions(self, body: Any) -> list[PartitionRecord]:
        raise NotImplementedError

    def parse_nodes(self, body: Any) -> list[NodeRecord]:
        raise NotImplementedError

    def update_failures(self, body: Any) -> list[str]:
        """Per-job failures a 200 answer to an update or a signal can still carry."""
        return []


def named_options(job: JobDescription) -> dict[str, str]:
    """The job description fields every API version spells the same: those that are set."""
    fields = {
        "partition": job.partition,
        "array": job.array,
        "dependency": job.dependency,
        "account": job.account,
        "qos": job.qos,
    }
    return {name: value for name, value in fields.items() if value}


class V0038(Adapter):
    """Slurm 22.05 (what the test cluster serves)."""

    version = "v0.0.38"

    def submit_body(self, job: JobDescription) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "name": job.name,
            "current_working_directory": job.working_dir,
            "standard_output": job.stdout,
            "standard_error": job.stderr,
            "comment": job.comment,
            "environment": dict(job.environment),
            # The spec says [min, max] integers, but 22.05 ignores that form; "N" works.
            "nodes": str(job.nodes),
            "tasks": job.ntasks,
            "cpus_per_task": job.cpus_per_task,
        }
        if job.time_limit_minutes is not None:
            desc["time_limit"] = job.time_limit_minutes
        if job.memory_mb is not None:
            desc["memory_per_node"] = job.memory_mb
        if job.gpus:
            desc["gpus"] = str(job.gpus)
        return {"script": job.script, "job": {**desc, **named_options(job)}}

    def parse_partitions(self, body: Any) -> list[PartitionRecord]:
        out = []
        for raw in _items(body, "partitions"):
            flags = [f.lower() for f in read_list(raw.get("flags"))]
            out.append(
                PartitionRecord(
                    name=read_text(raw.get("name")),
                    default="default" in flags,
                    max_time_minutes=read_number(raw.get("max_time_limit")),
                    max_nodes=read_number(raw.get("maximum_nodes_per_job")) or None,
                    state=(read_text(raw.get("state")) or "up").lower(),
                    accounts=read_text(raw.get("allowed_accounts")),
                    deny_accounts=read_text(raw.get("denied_accounts")),
                    qos=read_text(raw.get("allowed_qos")),
                    deny_qos=read_text(raw.get("denied_qos")),
                )
            )
        return out

    def parse_nodes(self, body: Any) -> list[NodeRecord]:
        out = []
        for raw in _items(body, "nodes"):
            states = [s.upper() for s in read_list(raw.get("state"))]
            states += [s.upper() for s in read_list(raw.get("state_flags"))]
            node = NodeRecord(
                name=read_text(raw.get("name")),
                partitions=read_list(raw.get("partitions")),
                states=states,
                cpus=read_number(raw.get("cpus")) or 0,
                memory_mb=read_number(raw.get("real_memory")) or 0,
                gres=read_text(raw.get("gres")),
            )
            node.cpus_idle = (read_number(raw.get("idle_cpus")) or 0) if node.usable else 0
            out.append(node)
        return out


class DataParserAdapter(Adapter):
    """v0.0.40 and newer (Slurm's data_parser plugins): the shared shape."""

    list_suffix = "/"

    def submit_body(self, job: JobDescription) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "name": job.name,
            "current_working_directory": job.working_dir,
            "standard_output": job.stdout,
            "standard_error": job.stderr,
            "comment": job.comment,
            "environment": [f"{k}={v}" for k, v in job.environment.items()],
            "minimum_nodes": job.nodes,
            "maximum_nodes": job.nodes,
            "tasks": job.ntasks,
            "cpus_per_task": job.cpus_per_task,
        }
        if job.time_limit_minutes is not None:
            desc["time_limit"] = _set_number(job.time_limit_minutes)
        if job.memory_mb is not None:
            desc["memory_per_node"] = _set_number(job.memory_mb)
        if job.gpus:
            desc["tres_per_job"] = f"gres/gpu:{job.gpus}"
        return {"script": job.script, "job": {**desc, **named_options(job)}}

    def last_update(self, body: dict[str, Any]) -> Optional[int]:
        return read_time(body.get("last_update"))

    def parse_partitions(self, body: Any) -> list[PartitionRecord]:
        out = []
        for raw in _items(body, "partitions"):
            maximums, part = _dict(raw.get("maximums")), _dict(raw.get("partition"))
            accounts, qos = _dict(raw.get("accounts")), _dict(raw.get("qos"))
            states = [s.upper() for s in read_list(part.get("state"))]
            flags = [f.upper() for f in read_list(raw.get("flags"))]
            # The specs have no default-partition flag; honour one if a site's slurmrestd has it.
            default = True if "DEFAULT" in states or "DEFAULT" in flags else None
            base = [s for s in states if s != "DEFAULT"]
            out.append(
                PartitionRecord(
                    name=read_text(raw.get("name")),
                    default=default,
                    max_time_minutes=read_number(maximums.get("time")),
                    max_nodes=read_number(maximums.get("nodes")) or None,
                    state=(base[0] if base else "UP").lower(),
                    accounts=read_text(accounts.get("allowed")),
                    deny_accounts=read_text(accounts.get("deny")),
                    qos=read_text(qos.get("allowed")),
                    deny_qos=read_text(qos.get("deny")),
                )
            )
        return out

    def parse_nodes(self, body: Any) -> list[NodeRecord]:
        out = []
        for raw in _items(body, "nodes"):
            node = NodeRecord(
                name=read_text(raw.get("name")),
                partitions=read_list(raw.get("partitions")),
                states=[s.upper() for s in read_list(raw.get("state"))],
                cpus=read_number(raw.get("cpus")) or 0,
                memory_mb=read_number(raw.get("real_memory")) or 0,
                gres=read_text(raw.get("gres")),
            )
            allocated = read_number(raw.get("alloc_cpus")) or 0
            node.cpus_idle = max(node.cpus - allocated, 0) if node.usable else 0
            out.append(node)
        return out

    def update_failures(self, body: Any) -> list[str]:
        failures = []
        if isinstance(body, dict):
            for item in body.get("results") or []:
                if isinstance(item, dict) and read_number(item.get("error_code")):
                    failures.append(read_text(item.get("why")) or read_text(item.get("error")))
            for item in body.get("status") or []:
                error = item.get("error") if isinstance(item, dict) else None
                if isinstance(error, dict) and read_number(error.get("code")):
                    failures.append(
                        read_text(error.get("message")) or read_text(error.get("string"))
                    )
        return failures


class V0040(DataParserAdapter):
    """Slurm 23.11. The submit answer also nests the job id under ``result``."""

    version = "v0.0.40"


class V0041(DataParserAdapter):
    """Slurm 24.05."""

    version = "v0.0.41"


class V0042(DataParserAdapter):
    """Slurm 24.11 (spec in the tests)."""

    version = "v0.0.42"


class V0043(DataParserAdapter):
    """Slurm 25.05."""

    version = "v0.0.43"


class V0044(DataParserAdapter):
    """Slurm 25.11 (spec in the tests). Job records also carry ``stdout_expanded``."""

    version = "v0.0.44"


ADAPTERS: dict[str, type[Adapter]] = {
    cls.version: cls for cls in (V0038, V0040, V0041, V0042, V0043, V0044)
}
SUPPORTED_VERSIONS = sorted(ADAPTERS, key=lambda v: tuple(int(p) for p in v[1:].split(".")))
_VERSION_PATH = re.compile(r"^/slurm/(v\d+\.\d+\.\d+)/")


def served_versions(spec: Any) -> list[str]:
    """The ``/slurm/vX.Y.Z/`` versions an OpenAPI document (``/openapi/v3``) lists."""
    paths = spec.get("paths") if isinstance(spec, dict) else None
    found = {m.group(1) for p in paths or {} if (m := _VERSION_PATH.match(p))}
    return sorted(found, key=lambda v: tuple(int(p) for p in v[1:].split(".")))


def pick_version(served: list[str], pinned: Optional[str] = None) -> Optional[str]:
    """The newest served version we have an adapter for (or the pinned one, if served)."""
    if pinned is not None:
        return pinned if pinned in served and pinned in ADAPTERS else None
    usable = [v for v in served if v in ADAPTERS]
    return usable[-1] if usable else None


def adapter_for(version: str) -> Adapter:
    return ADAPTERS[version]()


def _set_number(value: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": value}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
