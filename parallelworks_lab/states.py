"""The normalized job state model shared by every backend.

Each scheduler has its own vocabulary (Slurm's ``PENDING``/``PD``, Grid Engine's ``qw``, ...).
Backends translate into :class:`JobState` and keep the scheduler's own word in ``raw_state`` so
nothing the admin would recognise is lost.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    SUBMITTING = "SUBMITTING"
    QUEUED = "QUEUED"
    HELD = "HELD"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.NODE_FAIL,
        JobState.PREEMPTED,
    }
)

# Jobs that can still be held: waiting and not yet started.
HOLDABLE_STATES = frozenset({JobState.QUEUED})
RELEASABLE_STATES = frozenset({JobState.HELD})
