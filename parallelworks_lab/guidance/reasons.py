"""Why a job waits, in plain words: one sentence per scheduler reason code and, where there is
one, what the researcher can do about it.

The codes are Slurm's (``man squeue``, "JOB REASON CODES"); the other backends report their
waits with the same words (Grid Engine's hold and -hold_jid waits, the local cluster's queue).
Slurm's many limit codes (``AssocGrpCpuLimit``, ``QOSMaxJobsPerUserLimit``, ...) are read by
their parts, so new combinations are explained too. An unknown code is shown as it is, never
hidden.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from .models import ReasonExplanation

# code -> (summary, advice). Written for a researcher, not an administrator.
REASONS: dict[str, tuple[str, Optional[str]]] = {
    "Priority": (
        "Other jobs are ahead of yours in the queue; it starts when their turn is over.",
        "Nothing is wrong. Smaller or shorter requests can start earlier in gaps between "
        "bigger jobs.",
    ),
    "Resources": (
        "Your job is next, but the CPUs, memory or GPUs it asked for are in use right now.",
        "It starts as soon as enough of the partition frees up. Asking for less time, fewer "
        "nodes or less memory may let it start sooner.",
    ),
    "Dependency": (
        "It waits for another job it depends on to finish.",
        "It starts by itself once that job has completed successfully.",
    ),
    "DependencyNeverSatisfied": (
        "The job it depends on failed or was cancelled, so this one can never start.",
        "Cancel this job, or fix and resubmit the job it depends on, then resubmit this one.",
    ),
    "BeginTime": (
        "It was told not to start before a certain time, which has not come yet.",
        "Wait, or resubmit without the begin time (--begin in the script) to start sooner.",
    ),
    "JobHeldUser": (
        "It is on hold: it was held by you (or submitted held) and will not start until released.",
        "Release it to let it start.",
    ),
    "JobHeldAdmin": (
        "An administrator has put it on hold; it will not start until they release it.",
        "Ask your site's HPC support why, or cancel it.",
    ),
    "PartitionTimeLimit": (
        "It asks for more time than the partition allows, so it can never start there.",
        "Cancel it and resubmit with a shorter time limit (check #SBATCH --time lines in the "
        "script too), or choose a partition with a longer maximum.",
    ),
    "PartitionNodeLimit": (
        "It asks for more nodes than the partition allows (or the partition has).",
        "Cancel it and resubmit with fewer nodes, or choose a bigger partition.",
    ),
    "PartitionDown": (
        "The partition is down (not accepting jobs to run), so nothing starts there for now.",
        "Wait for the administrators to bring it back, or resubmit to another partition.",
    ),
    "PartitionInactive": (
        "The partition is inactive: it holds jobs but starts none for now.",
        "Wait, or resubmit to another partition.",
    ),
    "PartitionConfig": (
        "The request does not fit the partition's configuration.",
        "Check the partition's limits (nodes, CPUs, memory, GPUs) and resubmit.",
    ),
    "ReqNodeNotAvail": (
        "Some nodes it needs are not available (down, drained or reserved, often for maintenance).",
        "It starts when they are back. If a maintenance is coming, a shorter time limit can "
        "let it finish before the maintenance window.",
    ),
    # Slurm 22.05 prints this sentence instead of a code when a partition shares nodes with a
    # busier or higher-priority one.
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions": (
        "The nodes it needs are busy with jobs from another partition that goes first, or are "
        "down, drained or reserved.",
        "It starts when they free up. A partition with idle nodes, or a shorter time limit, may "
        "start it sooner.",
    ),
    "NodeDown": (
        "A node it needs is down.",
        "It waits for the node to come back; resubmitting elsewhere may be faster.",
    ),
    "Reservation": (
        "It waits for its advance reservation to start (or the nodes are reserved for "
        "someone else).",
        "Check the reservation's start time, or resubmit without a reservation.",
    ),
    "Licenses": (
        "It waits for a software license it asked for.",
        "It starts when a license is free.",
    ),
    "BadConstraints": (
        "No node in the partition matches the features or constraints it asks for.",
        "Cancel it and resubmit with constraints the cluster's nodes have.",
    ),
    "InvalidAccount": (
        "The account (project) it is charged to is not valid for you here.",
        "Cancel it and resubmit with one of your accounts.",
    ),
    "InvalidQOS": (
        "The QOS (quality of service) it asks for is not valid for you here.",
        "Cancel it and resubmit with a QOS you may use (or none: your default).",
    ),
    "AccountNotAllowed": (
        "Your account is not allowed on this partition.",
        "Resubmit with an account the partition allows, or to another partition.",
    ),
    "QOSNotAllowed": (
        "This QOS is not allowed on this partition.",
        "Resubmit with another QOS, or to another partition.",
    ),
    "JobLaunchFailure": (
        "The scheduler could not launch it (a file system or node problem).",
        "Resubmit; if it happens again, tell your site's HPC support.",
    ),
    "launch failed requeued held": (
        "The job could not be launched, was put back in the queue and held.",
        "Release it to try again; if it keeps failing, tell your site's HPC support.",
    ),
    "JobHoldMaxRequeue": (
        "It was requeued too many times and is now held.",
        "Look at its output for the error, fix it, and resubmit.",
    ),
    "BurstBufferResources": (
        "It waits for burst-buffer storage to become available.",
        None,
    ),
    "BurstBufferStageIn": ("Its input files are being copied to the burst buffer.", None),
    "Cleaning": (
        "It was requeued and Slurm is still cleaning up after its earlier run.",
        None,
    ),
    "Prolog": ("Its node is running the site's start-up script (prolog).", None),
    "PowerUpNode": ("The nodes it needs are being powered up.", "Give it a minute or two."),
    "Configuring": ("Its nodes are booting or being configured.", None),
    "WaitingForScheduling": (
        "The scheduler has not looked at it yet.",
        "It is evaluated within a minute or so.",
    ),
    "SchedDefer": (
        "The scheduler defers new jobs for a moment (site setting).",
        None,
    ),
    "FrontEndDown": ("No front-end node is available to launch it.", None),
    "SystemFailure": (
        "Slurm itself had a failure (file system, network or the controller).",
        "Tell your site's HPC support if it persists.",
    ),
    "InactiveLimit": ("It reached Slurm's inactivity limit.", None),
    "DeadLine": (
        "It could not start before its deadline.",
        "Resubmit with a later deadline or less time.",
    ),
    "JobArrayTaskLimit": (
        "The array's limit of tasks running at once (the %N in the array spec) is reached.",
        "The other tasks start as running ones finish; raise the %N to run more at once.",
    ),
    "MaxRequeued": ("It has been requeued the maximum number of times.", None),
    # Why a job ended (Slurm reports these once it has finished).
    "NonZeroExitCode": (
        "The script ended with a non-zero exit code: something in it failed.",
        "Look at the end of its error output (stderr) for the message.",
    ),
    "TimeLimit": (
        "It ran out of the time it asked for and was stopped.",
        "Ask for more time next time, or make the job save its progress (checkpoint).",
    ),
    "OutOfMemory": (
        "It used more memory than it asked for and was stopped.",
        "Ask for more memory next time (see what it used in the efficiency card).",
    ),
    "RaisedSignal": (
        "The script was killed by a signal.",
        "Look at the error output; a signal 9 often means the memory limit.",
    ),
    "SubmitLost": (
        "The submission never reached the scheduler (the connection or server failed at that "
        "moment).",
        "Resubmit it.",
    ),
    "LeftQueue": (
        "The job left the scheduler's list before its end could be read, so how it ended is "
        "unknown.",
        "Look at its output files; enable accounting (slurmdbd) to keep a job's history.",
    ),
}

# The parts of Slurm's limit codes: {Assoc,QOS}{Grp,Max,Min}<what>[Run][Minutes][Per..][Limit],
# e.g. AssocGrpCpuLimit, QOSMaxJobsPerUserLimit, AssocMaxCpuMinutesPerJobLimit, AssocGrpGRES.
_LIMIT = re.compile(
    r"^(?P<owner>Assoc|QOS)(?P<scope>Grp|Max|Min)"
    r"(?P<what>Cpu|CPU|Mem|Node|Energy|Billing|GRES|Gres|BB|License|Jobs|Job|SubmitJobs|SubmitJob"
    r"|WallDuration|Wall|Unknown|TRES)"
    r"(?P<run>Run)?(?P<minutes>Minutes)?(?P<per>PerJob|PerNode|PerUser|PerAccount)?"
    r"(?P<kind>Limit|NotSatisfied)?$"
)
_WHAT = {
    "Cpu": "CPUs",
    "CPU": "CPUs",
    "Mem": "memory",
    "Node": "nodes",
    "Energy": "energy",
    "Billing": "billing units",
    "Gres": "GPUs (or other devices)",
    "GRES": "GPUs (or other devices)",
    "License": "licenses",
    "BB": "burst-buffer storage",
    "Unknown": "resources",
    "TRES": "resources",
}
_OWNER = {"Assoc": "your account (project)", "QOS": "your QOS (quality of service)"}
_PER = {"PerUser": " per user", "PerAccount": " per account", "PerNode": " per node"}
_LEGACY = {  # older names still printed by some sites
    "AssociationJobLimit": "AssocMaxJobsLimit",
    "AssociationResourceLimit": "AssocGrpCpuLimit",
    "AssociationTimeLimit": "AssocMaxWallDurationPerJobLimit",
    "QOSJobLimit": "QOSMaxJobsPerUserLimit",
    "QOSResourceLimit": "QOSGrpCpuLimit",
    "QOSTimeLimit": "QOSMaxWallDurationPerJobLimit",
}


def _limit(code: str) -> Optional[tuple[str, Optional[str]]]:
    """The explanation of one of Slurm's account/QOS limit codes, read by its parts."""
    match = _LIMIT.match(_LEGACY.get(code, code))
    if match is None:
        return None
    owner, scope, what_key = _OWNER[match["owner"]], match["scope"], match["what"]
    owner_ = owner[0].upper() + owner[1:]  # at the start of a sentence
    per = _PER.get(match["per"] or "", "")
    what = _WHAT.get(what_key, what_key.lower())
    if match["minutes"]:
        what = f"{what} x run time (the {what} its jobs hold, multiplied by their time limits)"
    if scope == "Min" or match["kind"] == "NotSatisfied":
        return (
            f"It asks for less than the minimum that {owner} requires.",
            "Ask for more CPUs or GPUs, or use another QOS.",
        )
    if what_key.startswith("Wall"):
        if match["per"] == "PerJob":
            return (
                f"It asks for more time than {owner} allows for one job, so it cannot start.",
                "Cancel it and resubmit with a shorter time limit.",
            )
        return (
            f"{owner_} has used up the run time it is allowed.",
            "Ask your project's PI or your site's support about the allocation.",
        )
    if what_key.startswith("SubmitJob"):
        return (
            f"You have as many jobs queued as {owner} allows{per}.",
            "Wait for some of your jobs to finish, or combine many small jobs into one array job.",
        )
    if what_key.startswith("Job"):
        return (
            f"You already have as many jobs running as {owner} allows{per}; this one starts "
            "when one of them ends.",
            "Nothing to do: it starts by itself. Many similar tasks fit the limit better as one "
            "array job.",
        )
    if match["per"] == "PerJob":
        return (
            f"It asks for more {what} than {owner} allows for one job, so it cannot start.",
            f"Cancel it and resubmit asking for fewer {_WHAT.get(what_key, what_key.lower())}, "
            "or with another account or QOS.",
        )
    if scope == "Grp":
        return (
            f"{owner_} is already using all the {what} it may use at once (your "
            "jobs and your colleagues' together); yours starts when some of them finish.",
            "Nothing is wrong with the job. A smaller request, or another account or QOS, may "
            "start sooner.",
        )
    return (
        f"Your running jobs already use all the {what} that {owner} allows{per}; this one "
        "starts when some of them end.",
        "Nothing is wrong with the job; it starts by itself.",
    )


@functools.lru_cache(maxsize=1024)
def explain(code: Optional[str]) -> Optional[ReasonExplanation]:
    """The plain-language explanation of a scheduler reason; None when there is no reason.

    Cached: every page of jobs asks for each row. The answer is shared, so it is replaced,
    never changed in place (``model_copy``)."""
    if not code:
        return None
    head = code.split(",", 1)[0].split(":", 1)[0].strip()  # "ReqNodeNotAvail, Unavail..."
    if code.startswith("Error: ") or code.startswith("Error state"):
        return ReasonExplanation(
            code=code,
            summary="Grid Engine put the job in an error state; it will not start as it is.",
            advice="Read the error below, fix it (often the working directory or a path), "
            "then cancel and resubmit.",
            known=True,
        )
    found = REASONS.get(code) or REASONS.get(head) or _limit(head)
    if found is None and " " in head:
        # Already words (a local time-limit note, "2/3 tasks done", a Grid Engine failure).
        return ReasonExplanation(code=code, summary=code[0].upper() + code[1:], known=True)
    if found is None:
        return ReasonExplanation(
            code=code,
            summary=f"The scheduler gives the reason '{code}', which we have no explanation for.",
            advice=None,
            known=False,
        )
    summary, advice = found
    return ReasonExplanation(code=code, summary=summary, advice=advice, known=True)


# Grid Engine's "scheduling info" sentences, in words a researcher reads without the manual.
_SGE_DETAILS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r'cannot run in PE "([^"]+)" because it only offers (\d+) slots'),
        "The parallel environment '{0}' has only {1} free slots now, fewer than the job asks "
        "for: it waits for slots, or never starts if it asks for more than the cluster has.",
    ),
    (
        re.compile(r'queue instance "([^"]+)" dropped because it is full'),
        "Queue {0} is full.",
    ),
    (
        re.compile(r'cannot run in queue "([^"]+)" because it offers only (\S+)'),
        "Queue {0} cannot give what the job asks for (it offers only {1}).",
    ),
    (
        re.compile(r"cannot run at host \"([^\"]+)\" because it offers only (\S+)"),
        "Host {0} cannot give what the job asks for (it offers only {1}).",
    ),
    (
        re.compile(r"has no permission for cluster queue \"([^\"]+)\""),
        "You may not use queue {0}.",
    ),
    (
        re.compile(r"dropped because it is temporarily not available"),
        "A queue it could use is temporarily not available.",
    ),
)


def explain_details(lines: list[str]) -> list[str]:
    """Grid Engine's scheduling info, each line in plain words where we recognise it (the
    scheduler's own words otherwise: never dropped)."""
    out: list[str] = []
    for line in lines:
        for pattern, template in _SGE_DETAILS:
            match = pattern.search(line)
            if match:
                out.append(template.format(*match.groups()))
                break
        else:
            out.append(line)
    return list(dict.fromkeys(out))  # the same sentence for many hosts: once
