"""What every Slurm client here says and reads the same way, whether it runs Slurm's commands or
speaks to slurmrestd: the submit-token marker in a job's comment, the error texts that mean "not
answered" or "rate limited", which request field an sbatch error is about, Slurm's times,
sbatch's file name patterns and what an accepted submit tells."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Optional

from ..models import ResourceRequest
from ..states import JobState
from .base import SubmitResult

SEP = "\x1f"  # ASCII unit separator: cannot occur in the values we read

TOKEN_PREFIX = "pwlab:"  # noqa: S105 - a marker in --comment, not a secret

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


#: A filename pattern's codes: '%' and the one character after it (a trailing '%' is literal).
PATTERN_CODE = re.compile(r"%(.)", re.DOTALL)


def expand_pattern(pattern: str, job_id: str, array_job: str, task: Optional[str]) -> str:
    """Resolve sbatch filename patterns the way Slurm does for the ones we use (others are
    left as they are)."""
    values = {"%": "%", "j": job_id, "A": array_job, "a": task or ""}
    return PATTERN_CODE.sub(lambda m: values.get(m.group(1), m.group(0)), pattern)


def submitted(
    native_id: str, stdout: str, stderr: str, working_dir: str, resources: ResourceRequest
) -> SubmitResult:
    """What Slurm accepted (from sbatch or slurmrestd): a pending job and where its output goes,
    from the file name patterns it was given (an array's tasks each have their own files)."""
    stdout_path = stderr_path = None
    if not resources.array:
        stdout_path = expand_pattern(stdout, native_id, native_id, None)
        stderr_path = expand_pattern(stderr, native_id, native_id, None)
    return SubmitResult(
        native_id=native_id,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        working_dir=working_dir,
        state=JobState.QUEUED,
        raw_state="PENDING",
    )
