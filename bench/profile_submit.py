"""Where the server's own time in a submit goes, with the scheduler taken out.

``JobService.submit`` on a ``slurm`` cluster (``local`` transport) whose ``sbatch`` and
``sinfo`` answer at once: what is left is the server's work (validation, the working-directory
check, provenance from the repository holding the working directory, the store's writes, the
event). The whole submit is timed (p50 and p95), then each step is timed where it runs in a
submit (wrapped, so the sum of the steps can be read against the whole). No scheduler needed:

    PYTHONPATH=$PWD python bench/profile_submit.py [--rounds N] [--cprofile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, Optional

from parallelworks_lab import service_actions
from parallelworks_lab.backends.slurm import SlurmBackend
from parallelworks_lab.models import JobSubmit, Partition
from parallelworks_lab.service import JobService
from parallelworks_lab.store import JobStore
from parallelworks_lab.transports.base import CommandResult

PARTITION = Partition(
    name="debug", default=True, nodes_total=1, cpus_per_node=4, memory_mb_per_node=4096
)


class InstantSlurm(SlurmBackend):
    """The real Slurm backend with a scheduler that answers at once."""

    kind: ClassVar[str] = "slurm"
    next_id = 1000

    async def discover(self) -> list[Partition]:
        return [PARTITION]

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
    ) -> CommandResult:
        InstantSlurm.next_id += 1
        return CommandResult(0, f"{InstantSlurm.next_id}\n", "")


def p50_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


class StepTimer:
    """Wraps functions (sync or async) so each call's time is added to its step's samples."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, step: str, is_async: bool = False) -> None:
        original = getattr(owner, attr, None)
        if original is None:
            return  # an older version of the code, without this step (compared side by side)
        samples = self.samples.setdefault(step, [])
        if is_async:

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    samples.append((time.perf_counter() - t0) * 1000)

            setattr(owner, attr, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    samples.append((time.perf_counter() - t0) * 1000)

            setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def undo(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def make_repository(root: Path) -> Path:
    """A git repository with one commit and a working directory three folders down in it."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    author = ["-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    commit = ["commit", "-q", "--allow-empty", "-m", "bench"]
    subprocess.run(["git", "-C", str(root), *author, *commit], check=True)
    work = root / "project" / "runs" / "today"
    work.mkdir(parents=True)
    return work


async def submit_rounds(service: JobService, request: JobSubmit, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await service.submit(request)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--cprofile", action="store_true", help="also print a cProfile top 25")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pwlab-profile-") as tmp_name:
        tmp = Path(tmp_name)
        work = make_repository(tmp / "repo")
        service = JobService(
            JobStore(tmp / "jobs.sqlite"),
            clusters=[{"id": "hpc", "kind": "slurm"}],
            backend_classes={"slurm": InstantSlurm},
            state_dir=tmp / "state",
            root_dir=tmp,
            log=logging.getLogger("profile"),
        )
        loop = asyncio.new_event_loop()
        # As the Jupyter app does: the event is handed to the loop, not sent inline.

        def emit(kind: str, payload: dict[str, Any]) -> None:
            loop.call_soon(lambda: None)

        service.subscribe(emit)
        request = JobSubmit(cluster="hpc", command="true", working_dir=str(work))
        backend = service.clusters["hpc"].backend
        assert isinstance(backend, InstantSlurm)

        def run(coro: Awaitable[Any]) -> Any:
            return loop.run_until_complete(coro)

        run(submit_rounds(service, request, 20))  # warm-up: discovery, caches, SQLite pages
        whole = run(submit_rounds(service, request, args.rounds))

        steps = StepTimer()
        steps.wrap(service, "check_resources", "partition + limits", is_async=True)
        steps.wrap(backend, "working_dir_path", "working-dir path", is_async=True)
        steps.wrap(service, "_provenance", "provenance (git, modules, user)")
        steps.wrap(service_actions, "script_hash", "script hash")
        steps.wrap(service.store, "insert", "store: insert SUBMITTING row")
        steps.wrap(service.store, "update", "store: native id (+ reads)")
        steps.wrap(service.store, "update_soon", "store: native id (answer; written after)")
        steps.wrap(service, "get_job", "store: read job")
        steps.wrap(service, "_job_changed", "event")
        steps.wrap(service.store, "_to_job", "  of which row -> Job")
        stepped = run(submit_rounds(service, request, args.rounds))
        steps.undo()

        p50, p95 = p50_p95(whole)
        print(
            f"JobService.submit, instant scheduler, {args.rounds} rounds: p50 {p50:.3f} ms"
            f"  p95 {p95:.3f} ms"
        )
        print(f"  (with step timers: p50 {statistics.median(stepped):.3f} ms)")
        print(f"  {'step':34} {'p50 ms':>8} {'p95 ms':>8} {'calls/submit':>12}")
        for name, values in steps.samples.items():
            if not values:
                continue
            s50, s95 = p50_p95(values)
            per = len(values) / args.rounds
            print(f"  {name:34} {s50:8.3f} {s95:8.3f} {per:12.1f}")

        if args.cprofile:
            profile = cProfile.Profile()
            profile.enable()
            run(submit_rounds(service, request, args.rounds))
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        run(service.stop())
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
