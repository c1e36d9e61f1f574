"""Starting and signalling a ``local`` job's process: the wrapper (``local_job.sh``) in a
session of its own, with the job's environment, and signals to its whole process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import psutil

from ..environment import clean_environ
from ..privacy import touch_private
from .local_jobs import WRAPPER, LocalJob, forget_secrets

# Test hook: the server process dies (os._exit) at this point, to test crash recovery there.
CRASH_AT_ENV = "PWLAB_TEST_CRASH_AT"


def crash_here(point: str) -> None:
    """Die at ``point`` if the crash-recovery tests asked for it (never set in production)."""
    if os.environ.get(CRASH_AT_ENV) == point:
        os._exit(70)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a job's whole process group (gone or not ours any more: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def start_job_process(
    job: LocalJob, cluster_id: str, output_umask: str
) -> asyncio.subprocess.Process:
    """Start ``job`` under the wrapper; the job object then holds its process identity."""
    meta = job.meta
    env = clean_environ(meta.get("env") or {})
    env.update(
        {
            "PWLAB_JOB_ID": job.native_id,
            "PWLAB_JOB_NAME": str(meta["name"]),
            "PWLAB_CLUSTER": cluster_id,
            "PWLAB_NTASKS": str(meta["ntasks"]),
            "PWLAB_CPUS_PER_TASK": str(meta["cpus_per_task"]),
        }
    )
    touch_private(meta["stdout"])
    touch_private(meta["stderr"])
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(WRAPPER),
        str(job.dir),
        meta["working_dir"],
        meta["stdout"],
        meta["stderr"],
        # The job's own files (in its working directory) are created with this umask;
        # the wrapper keeps its folder's files private whatever it is.
        output_umask,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    crash_here("after-spawn")
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = time.time()
    # Held in memory only: the wrapper records its own start on disk (atomically, before it
    # runs anything), so no crash of this server between the fork and a write of ours can
    # leave a running job unrecorded and make a restarted server start it a second time.
    job.started = {"pid": proc.pid, "create_time": create_time, "started_at": time.time()}
    job.proc = proc
    # The process has its environment: secret values need not stay on disk.
    forget_secrets(job)
    return proc
