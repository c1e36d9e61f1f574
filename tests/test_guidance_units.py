"""Guidance logic that needs no scheduler: reason texts, the usage card, suggestions and the
local cluster's start estimates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parallelworks_lab.backends.base import UsageRecord
from parallelworks_lab.backends.local_usage import Running, Waiting, estimate_starts
from parallelworks_lab.guidance.reasons import REASONS, explain
from parallelworks_lab.guidance.suggest import round_memory_mb, round_minutes
from parallelworks_lab.guidance.usage import build_usage, format_duration, format_memory
from parallelworks_lab.models import ResourceRequest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reasons.md"

# Codes from `man squeue` (JOB REASON CODES, Slurm 22.05-24.x) that must all be explained.
SLURM_CODES = """AssocGrpBBLimit AssocGrpCpuLimit AssocGrpCPUMinutesLimit AssocGrpCPURunMinutesLimit
AssocGrpEnergyLimit AssocGrpGRES AssocGrpGRESMinutes AssocGrpGRESRunMinutes AssocGrpJobsLimit
AssocGrpMemLimit AssocGrpMemMinutes AssocGrpMemRunMinutes AssocGrpNodeLimit AssocGrpNodeMinutes
AssocGrpNodeRunMinutes AssocGrpSubmitJobsLimit AssocGrpWallLimit AssocMaxCpuMinutesPerJobLimit
AssocMaxCpuPerJobLimit AssocMaxCpuPerNode AssocMaxEnergyPerJob AssocMaxGRESMinutesPerJob
AssocMaxGRESPerJob AssocMaxGRESPerNode AssocMaxJobsLimit AssocMaxMemMinutesPerJob
AssocMaxMemPerJob AssocMaxMemPerNode AssocMaxNodeMinutesPerJob AssocMaxNodePerJobLimit
AssocMaxSubmitJobLimit AssocMaxWallDurationPerJobLimit BadConstraints BeginTime Cleaning
Dependency DependencyNeverSatisfied InvalidAccount InvalidQOS JobArrayTaskLimit JobHeldAdmin
JobHeldUser JobLaunchFailure Licenses NodeDown NonZeroExitCode PartitionConfig PartitionDown
PartitionInactive PartitionNodeLimit PartitionTimeLimit PowerUpNode Priority Prolog
QOSGrpCpuLimit QOSGrpCPUMinutesLimit QOSGrpGRES QOSGrpJobsLimit QOSGrpMemLimit QOSGrpNodeLimit
QOSGrpSubmitJobsLimit QOSGrpWallLimit QOSJobLimit QOSMaxCpuMinutesPerJobLimit
QOSMaxCpuPerJobLimit QOSMaxCpuPerNode QOSMaxCpuPerUserLimit QOSMaxGRESPerJob QOSMaxGRESPerUser
QOSMaxJobsPerAccount QOSMaxJobsPerUserLimit QOSMaxMemPerJob QOSMaxNodePerJobLimit
QOSMaxNodePerUserLimit QOSMaxSubmitJobPerAccount QOSMaxSubmitJobPerUserLimit
QOSMaxWallDurationPerJobLimit QOSMinCpuNotSatisfied QOSMinGRES QOSResourceLimit QOSTimeLimit
ReqNodeNotAvail Reservation Resources SystemFailure TimeLimit WaitingForScheduling""".split()


@pytest.mark.parametrize("code", SLURM_CODES)
def test_every_slurm_reason_code_has_a_plain_explanation(code):
    explained = explain(code)
    assert explained is not None and explained.known, code
    assert explained.summary.endswith(".") and code not in explained.summary
    assert explained.summary[0].isupper()


def test_unknown_codes_are_shown_raw_never_hidden():
    explained = explain("SomeFutureCode")
    assert explained is not None and not explained.known
    assert "SomeFutureCode" in explained.summary
    assert explain(None) is None and explain("") is None


def test_reasons_with_details_and_sentences():
    assert explain("ReqNodeNotAvail, UnavailableNodes:node[1-2]").summary.startswith("Some nodes")  # type: ignore[union-attr]
    assert explain("SubmitLost: the submission never reached the scheduler").known  # type: ignore[union-attr]
    grid = explain("Error: can't chdir to /nope")
    assert grid is not None and "error state" in grid.summary


def test_the_users_page_lists_every_reason():
    page = DOCS.read_text()
    listed = set(re.findall(r"\| `([^`]+)` \|", page))
    assert set(REASONS) <= listed, set(REASONS) - listed


def test_usage_card_ratios_amounts_and_hints():
    record = UsageRecord(
        source="sacct",
        elapsed_seconds=600,
        cpu_seconds=600.0,
        max_memory_mb=1024.0,
        cpus=8,
        requested_memory_mb=32768.0,
        time_limit_seconds=24 * 3600,
    )
    usage = build_usage(record, ResourceRequest(cpus_per_task=8))
    assert usage.cpu_efficiency == pytest.approx(0.125)
    assert usage.memory_efficiency == pytest.approx(1024 / 32768, abs=1e-3)
    assert len(usage.hints) == 3
    assert "1.0 GiB of the 32.0 GiB" in usage.hints[0]
    assert "about 1 of its 8 CPUs" in usage.hints[1]
    assert "10 min of its 1 d limit" in usage.hints[2]
    assert usage.summary == (
        "used 3% of its memory request (1.0 GiB of 32.0 GiB), CPUs 12% busy, ran 10 min of 1 d"
    )
    # A job that used what it asked carries no hint.
    fair = UsageRecord("sacct", 3000, 5900.0, 3000.0, 2, 4096.0, 3600)
    assert build_usage(fair, ResourceRequest()).hints == []


def test_usage_card_without_accounting_figures():
    usage = build_usage(UsageRecord(source="qacct", elapsed_seconds=5), ResourceRequest())
    assert usage.cpu_efficiency is None and usage.memory_efficiency is None
    assert usage.summary == "ran 5 s" and usage.hints == []


def test_units_people_read():
    assert format_memory(300) == "300 MiB" and format_memory(1536) == "1.5 GiB"
    assert format_duration(5400) == "1 h 30 min" and format_duration(93600) == "1 d 2 h"
    assert round_memory_mb(300) == 512 and round_memory_mb(3100 * 1.2) == 4096
    assert round_minutes(540 * 1.5) == 15 and round_minutes(5000) == 90


def test_local_start_estimates_first_in_first_out():
    now = 1000.0
    running = [Running(cpus=2, ends_at=1600.0), Running(cpus=2, ends_at=1300.0)]
    waiting = [
        Waiting("3", cpus=2, time_limit_minutes=10),  # takes the CPUs freed at 1300
        Waiting("4", cpus=4, time_limit_minutes=5),  # needs all 4: after 3 ends (1900)
        Waiting("5", cpus=1, time_limit_minutes=None),  # behind 4 (FIFO): at 2200
        Waiting("6", cpus=1, time_limit_minutes=5),  # behind a job with no limit: unknown
    ]
    assert estimate_starts(4, now, running, waiting) == {"3": 1300.0, "4": 1900.0, "5": 2200.0}
    # A running job without a time limit makes any start that needs its CPUs unknowable.
    assert estimate_starts(2, now, [Running(2, None)], [Waiting("7", 1, 5)]) == {}
    # Free CPUs now: the estimate is now.
    assert estimate_starts(4, now, [Running(2, 1600.0)], [Waiting("8", 2, 5)]) == {"8": now}


def test_the_notebook_display_lists_the_schedulers_words():
    from parallelworks_lab.client.guidance import reason_rows
    from parallelworks_lab.guidance.models import ReasonExplanation

    explained = ReasonExplanation(
        code="scheduling info",
        summary="The scheduler has not started it yet; what it says is below.",
        known=True,
        details=["Queue all.q@h1 is full."],
    )
    assert ("The scheduler says", "Queue all.q@h1 is full.") in reason_rows(explained, True)
