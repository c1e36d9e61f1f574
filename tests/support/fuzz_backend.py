"""The real `local` backend, except that what a job runs is replaced by ``exit 0``.

The fuzzer submits whatever text it generates as a script; the whole submit and start path runs
(validation, store, job folder, environment, exec of the wrapper) but no generated text does.
"""

from __future__ import annotations

from parallelworks_lab.backends.local import LocalBackend
from parallelworks_lab.backends.local_jobs import LocalJob


class InertLocal(LocalBackend):
    async def _spawn(self, job: LocalJob) -> None:
        (job.dir / "script.sh").write_text("exit 0\n")
        await super()._spawn(job)
