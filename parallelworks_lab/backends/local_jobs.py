"""One job of the ``local`` cluster as a folder of files: the request (``meta.json``), the start
record and exit status that ``local_job.sh`` (the wrapper every job runs under) writes, the hold
marker and the final state we decide on cancel or timeout. The files are what a restarted server
reads back; :class:`LocalJob` mirrors them in memory."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import psutil

from ..privacy import is_secret_name, redact_env, touch_private, write_json_private

WRAPPER = Path(__file__).with_name("local_job.sh")


def read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def _read_start_record(job_dir: Path) -> Optional[dict[str, Any]]:
    """The start record written by local_job.sh when it claims the job, if it did.

    The wrapper writes only its pid; the file's mtime is when it started. (Earlier versions
    wrote the record themselves, with the process's create_time: those are read as they are.)
    """
    path = job_dir / "started"
    record = read_json(path)
    if record is None or "pid" not in record:
        return None  # not claimed, or the wrapper died between creating and writing it
    if "started_at" not in record:
        try:
            record["started_at"] = path.stat().st_mtime
        except FileNotFoundError:
            return None
    return record


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_json_private(path, data)


def forget_secrets(job: LocalJob) -> None:
    """Drop secret-named env values from a started job's meta.json (the process has them)."""
    env = job.meta.get("env") or {}
    if any(value for name, value in env.items() if is_secret_name(name)):
        job.meta = {**job.meta, "env": redact_env(env)}
        write_json(job.dir / "meta.json", job.meta)


@dataclass
class LocalJob:
    """One job folder. State is mirrored in memory; the files are what survives a restart."""

    native_id: str
    dir: Path
    meta: dict[str, Any]
    held: bool = False
    started: Optional[dict[str, Any]] = None
    final: Optional[dict[str, Any]] = None
    exited: Optional[tuple[int, float]] = None
    proc: Optional[asyncio.subprocess.Process] = field(default=None, repr=False)

    @classmethod
    def load(cls, job_dir: Path) -> Optional[LocalJob]:
        meta = read_json(job_dir / "meta.json")
        if meta is None:
            return None  # an aborted submit
        job = cls(job_dir.name, job_dir, meta, held=(job_dir / "held").exists())
        job.started = _read_start_record(job_dir)
        job.final = read_json(job_dir / "final")
        job.refresh_exit()
        return job

    @property
    def cpus(self) -> int:
        return int(self.meta["cpus"])

    def set_held(self, held: bool) -> None:
        if held:
            touch_private(self.dir / "held")
        else:
            (self.dir / "held").unlink(missing_ok=True)
        self.held = held

    def reload_started(self) -> None:
        """Take the wrapper's own start record as the truth once there is one: when a job was
        started twice (a crash right after forking, then a restart) it names the start that
        claimed the job and runs it, which may not be the process this server forked."""
        record = _read_start_record(self.dir)
        if record is not None:
            self.started = record

    def set_final(self, final: dict[str, Any]) -> None:
        write_json(self.dir / "final", final)
        self.final = final

    def refresh_exit(self) -> Optional[tuple[int, float]]:
        """Read the exit status written by local_job.sh (only a started job can have one)."""
        if self.exited is None and self.started is not None:
            path = self.dir / "exit_code"
            try:
                self.exited = int(path.read_text().strip()), path.stat().st_mtime
            except (FileNotFoundError, ValueError):
                pass
        return self.exited

    def process(self) -> Optional[psutil.Process]:
        """The job's process if it is still alive (and is really ours, not a reused pid)."""
        started = self.started
        if not started:
            return None
        try:
            proc = psutil.Process(int(started["pid"]))
            if "create_time" in started:
                if abs(proc.create_time() - float(started["create_time"])) > 1.0:
                    return None
            elif proc.create_time() > float(started["started_at"]) + 1.0:
                # Created after the wrapper wrote its record: the pid was reused.
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
            return None
        return proc

    def finished(self) -> bool:
        return self.final is not None or self.refresh_exit() is not None
