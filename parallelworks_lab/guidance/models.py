"""The shapes guidance adds to the API. Plain pydantic, imported by ``models.py``."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field


class ReasonExplanation(BaseModel):
    """Why a job waits (or ended as it did), in words a researcher understands."""

    code: str = Field(description="The scheduler's own reason code, e.g. 'Resources'.")
    summary: str = Field(description="One plain sentence.")
    advice: Optional[str] = Field(default=None, description="What the user can do about it.")
    known: bool = Field(description="False when the code is not in our list (shown raw).")
    details: list[str] = Field(
        default_factory=list,
        description="What the scheduler itself says, in plain words where we recognise it "
        "(Grid Engine's scheduling info; GET /jobs/{id} only).",
    )


class PartitionLoad(BaseModel):
    """How busy the job's partition is, from the last discovery (no extra scheduler call)."""

    partition: str
    nodes_idle: int
    nodes_total: int
    cpus_idle: Optional[int] = None
    text: str


class Usage(BaseModel):
    """What a finished job used, next to what it asked for."""

    source: Literal["sacct", "qacct", "measured"] = Field(
        description="sacct (Slurm accounting), qacct (Grid Engine accounting) or measured "
        "(the local cluster samples the job's processes)."
    )
    elapsed_seconds: Optional[int] = None
    time_limit_seconds: Optional[int] = None
    cpus: Optional[int] = None
    cpu_seconds: Optional[float] = None
    cpu_efficiency: Optional[float] = Field(
        default=None, description="CPU time / (elapsed x CPUs), 0..1."
    )
    max_memory_mb: Optional[float] = Field(default=None, description="Peak resident memory.")
    requested_memory_mb: Optional[float] = None
    memory_efficiency: Optional[float] = Field(
        default=None, description="Peak memory / requested memory, 0..1."
    )
    gpus: int = 0
    hints: list[str] = Field(default_factory=list)
    summary: str = ""


class Provenance(BaseModel):
    """Where a job came from."""

    user: Optional[str] = None
    notebook_path: Optional[str] = None
    cell_id: Optional[str] = None
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    modules: list[str] = Field(default_factory=list)


class Suggestion(BaseModel):
    """What to ask for, from what earlier runs of the same script really used."""

    runs: int = 0
    matched_by: Optional[Literal["script", "name"]] = None
    resources: dict[str, int] = Field(
        default_factory=dict, description="Suggested values (memory_mb, time_limit_minutes)."
    )
    max_memory_mb: Optional[float] = None
    max_elapsed_seconds: Optional[int] = None
    message: Optional[str] = None
    job_ids: list[str] = Field(default_factory=list)
