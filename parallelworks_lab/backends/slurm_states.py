"""Slurm job states (long names and squeue's compact codes) to the normalized model."""

from __future__ import annotations

from typing import Optional

from ..states import JobState

# Every base state Slurm documents (squeue(1) "JOB STATE CODES"), long name and compact code.
SLURM_STATES: dict[str, tuple[str, JobState]] = {
    "BOOT_FAIL": ("BF", JobState.NODE_FAIL),
    "CANCELLED": ("CA", JobState.CANCELLED),
    "COMPLETED": ("CD", JobState.COMPLETED),
    "CONFIGURING": ("CF", JobState.QUEUED),
    "COMPLETING": ("CG", JobState.COMPLETING),
    "DEADLINE": ("DL", JobState.TIMEOUT),
    "FAILED": ("F", JobState.FAILED),
    "NODE_FAIL": ("NF", JobState.NODE_FAIL),
    "OUT_OF_MEMORY": ("OOM", JobState.OUT_OF_MEMORY),
    "PENDING": ("PD", JobState.QUEUED),
    "PREEMPTED": ("PR", JobState.PREEMPTED),
    "RUNNING": ("R", JobState.RUNNING),
    "RESV_DEL_HOLD": ("RD", JobState.HELD),
    "REQUEUE_FED": ("RF", JobState.QUEUED),
    "REQUEUE_HOLD": ("RH", JobState.HELD),
    "REQUEUED": ("RQ", JobState.QUEUED),
    "RESIZING": ("RS", JobState.RUNNING),
    "REVOKED": ("RV", JobState.CANCELLED),
    "SIGNALING": ("SI", JobState.RUNNING),
    "SPECIAL_EXIT": ("SE", JobState.FAILED),
    "STAGE_OUT": ("SO", JobState.COMPLETING),
    "STOPPED": ("ST", JobState.SUSPENDED),
    "SUSPENDED": ("S", JobState.SUSPENDED),
    "TIMEOUT": ("TO", JobState.TIMEOUT),
}
BY_CODE = {code: state for code, state in SLURM_STATES.values()}
BY_NAME = {name: state for name, (_, state) in SLURM_STATES.items()}

# Pending reasons that mean "held": shown as HELD so the user knows to release it.
HOLD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})


def normalize(raw_state: str, reason: Optional[str] = None) -> JobState:
    """Map ``raw_state`` (``PENDING``, ``PD``, ``CANCELLED by 0``, ``COMPLETED+``...)."""
    word = raw_state.strip().split(" ", 1)[0].rstrip("+").upper()
    state = BY_NAME.get(word) or BY_CODE.get(word) or JobState.UNKNOWN
    if state is JobState.QUEUED and reason in HOLD_REASONS:
        return JobState.HELD
    return state


def exit_code_from_status(status: int) -> int:
    """squeue's exit_code is the raw wait status: exit 3 is 768, a signal n is 128+n."""
    signal = status & 0x7F
    return 128 + signal if signal else (status >> 8) & 0xFF


def exit_code_from_sacct(value: str) -> Optional[int]:
    """sacct's ``code:signal`` (``3:0``, ``0:15``)."""
    code, _, signal = value.partition(":")
    try:
        code_i, signal_i = int(code), int(signal or 0)
    except ValueError:
        return None
    return 128 + signal_i if signal_i else code_i
