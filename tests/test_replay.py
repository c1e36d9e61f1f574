"""The record/replay machinery itself (tests/support/cassette.py), without any server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from parallelworks_lab.backends.slurmrest_token import jwt_claims

from .support.cassette import (
    RECORDINGS,
    Replayer,
    ReplayMiss,
    Substitutions,
    dedupe,
    fake_jwt,
    mask_secrets,
    request_key,
    scrub_text,
)


def run(argv: list[str], stdout: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "op": "run",
        "argv": argv,
        "stdin": None,
        "env": {},
        "returncode": 0,
        "stdout": stdout,
        "stderr": "",
        **extra,
    }


def asker(replayer: Replayer):
    def ask(argv: list[str], **extra: Any) -> str:
        request = {"op": "run", "argv": argv, "stdin": None, "env": {}, **extra}
        answer = replayer.answer_now(request)
        assert answer is not None
        return str(answer["stdout"])

    return ask


SUBMIT_POLL_CANCEL = [
    run(["sbatch", "--parsable", "--job-name=a"], "5\n", idempotent=False),
    run(["squeue", "--me"], "5 PENDING"),
    run(["squeue", "--me"], "5 RUNNING"),
    run(["scancel", "5"]),
    run(["squeue", "--me"], "5 CANCELLED"),
]


def test_answers_advance_but_never_past_a_change_not_yet_made():
    ask = asker(Replayer("slurm", "t", Substitutions(), SUBMIT_POLL_CANCEL))
    assert ask(["sbatch", "--parsable", "--job-name=a"], idempotent=False) == "5\n"
    assert ask(["squeue", "--me"]) == "5 PENDING"
    assert ask(["squeue", "--me"]) == "5 RUNNING"
    assert ask(["squeue", "--me"]) == "5 RUNNING"  # no scancel yet: no CANCELLED either
    ask(["scancel", "5"])
    assert ask(["squeue", "--me"]) == "5 CANCELLED"
    assert ask(["squeue", "--me"]) == "5 CANCELLED"  # past the recording: the last answer


async def test_a_query_first_recorded_after_a_change_waits_for_it():
    """squeue asked between two submits, where the recording did not ask it, must not get the
    answer from before the second submit (which lacks that job): it waits for the next change."""
    events = [
        run(["sbatch", "a"], "5\n", idempotent=False),
        run(["squeue"], "5 RUNNING"),
        run(["sbatch", "b"], "6\n", idempotent=False),
        run(["scontrol", "uhold", "6"]),
        run(["squeue"], "5 RUNNING\n6 HELD"),
    ]
    replayer = Replayer("slurm", "t", Substitutions(), events)
    ask = asker(replayer)
    ask(["sbatch", "a"], idempotent=False)
    assert ask(["squeue"]) == "5 RUNNING"
    assert ask(["squeue"]) == "5 RUNNING"  # recorded after the last change: still current
    ask(["sbatch", "b"], idempotent=False)
    squeue = {"op": "run", "argv": ["squeue"], "stdin": None, "env": {}}
    assert replayer.answer_now(squeue, give_up=False) is None  # stale: wait
    waiting = asyncio.ensure_future(replayer.answer(squeue))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    ask(["scontrol", "uhold", "6"])
    assert (await waiting)["stdout"] == "5 RUNNING\n6 HELD"


def test_a_changed_submit_is_a_miss_naming_it_and_the_recorded_one():
    replayer = Replayer("slurm", "t", Substitutions(), SUBMIT_POLL_CANCEL)
    with pytest.raises(ReplayMiss) as miss:
        asker(replayer)(["sbatch", "--parsable", "--job-name=a", "--exclusive"], idempotent=False)
    message = str(miss.value)
    assert "asked:    sbatch --parsable --job-name=a --exclusive" in message
    assert "expected: sbatch --parsable --job-name=a" in message
    assert replayer.misses == [message]


def test_an_unrecorded_query_is_a_miss_with_the_nearest_recorded_one():
    replayer = Replayer("slurm", "t", Substitutions(), SUBMIT_POLL_CANCEL)
    with pytest.raises(ReplayMiss, match=r"never recorded[\s\S]*nearest recorded: squeue --me"):
        asker(replayer)(["squeue", "--me", "-t", "all"])


def test_changes_must_come_in_their_recorded_order():
    replayer = Replayer("slurm", "t", Substitutions(), SUBMIT_POLL_CANCEL)
    with pytest.raises(ReplayMiss, match="not the change the recording made next"):
        asker(replayer)(["scancel", "5"])
    assert replayer.unreplayed_changes()[0].startswith("sbatch")


def test_a_query_waits_for_the_requests_recorded_before_it_then_gives_up_on_them():
    events = [
        run(["squeue"], "RUNNING"),
        {"op": "read_file", "path": "/o", "offset": 0, "limit": 9, "data": "line 1\n"},
        run(["squeue"], "COMPLETED"),
    ]
    replayer = Replayer("slurm", "t", Substitutions(), events, patience=0.2)
    ask = asker(replayer)
    assert ask(["squeue"]) == "RUNNING"
    assert ask(["squeue"]) == "RUNNING"  # the log was read while it ran: not yet
    replayer.answer_now({"op": "read_file", "path": "/o", "offset": 0, "limit": 9})
    assert ask(["squeue"]) == "COMPLETED"

    replayer = Replayer("slurm", "t", Substitutions(), events, patience=0.2)
    ask = asker(replayer)
    assert ask(["squeue"]) == "RUNNING"
    assert ask(["squeue"]) == "RUNNING"
    time.sleep(0.25)  # nobody reads the log in this replay
    assert ask(["squeue"]) == "COMPLETED"


async def test_a_recorded_transport_replays_its_commands_and_files(tmp_path):
    """Record real commands and files on this machine, then replay them in another directory."""
    from parallelworks_lab.transports import LocalTransportSettings

    from .support.cassette import Recording, RecordingLocalTransport, ReplayLocalTransport

    def subs_for(workdir):
        subs = Substitutions()
        subs.add("workdir", str(workdir))
        return subs

    first = tmp_path / "first"
    first.mkdir()
    (first / "out.log").write_text("hello\n")
    recording = Recording("local", "t", subs_for(first))
    live = RecordingLocalTransport(LocalTransportSettings())
    live.session = recording
    result = await live.run(["sh", "-c", f"echo {first}; cat; exit 3"], input="in\n")
    assert (result.returncode, result.stdout) == (3, f"{first}\nin\n")
    assert await live.read_file(f"{first}/out.log", 0, 100) == b"hello\n"
    assert await live.is_dir(str(first))
    events = recording.events
    assert events[0]["argv"] == ["sh", "-c", "echo <pw:workdir>; cat; exit 3"]
    assert events[0]["stdout"] == "<pw:workdir>\nin\n"

    second = tmp_path / "second"  # never created: nothing runs
    replay = ReplayLocalTransport(LocalTransportSettings())
    replay.session = Replayer("local", "t", subs_for(second), events)
    again = await replay.run(["sh", "-c", f"echo {second}; cat; exit 3"], input="in\n")
    assert (again.returncode, again.stdout) == (3, f"{second}\nin\n")
    assert await replay.read_file(f"{second}/out.log", 0, 100) == b"hello\n"
    assert await replay.is_dir(str(second))
    with pytest.raises(ReplayMiss, match="nearest recorded: sh -c"):
        await replay.run(["sh", "-c", f"echo {second}; cat; exit 4"], input="in\n")


def test_job_id_lists_match_in_any_order():
    assert request_key(run(["sacct", "-j", "12,13_1"])) == request_key(
        run(["sacct", "-j", "13_1,12"])
    )
    assert request_key(run(["sacct", "-j", "12"])) != request_key(run(["sacct", "-j", "12,13"]))


def test_placeholders_round_trip():
    subs = Substitutions()
    subs.add("workdir", "/scratch/t-1234")
    subs.add("id1", "0123456789abcdef0123456789abcdef")
    subs.add("id1.12", "0123456789ab")
    text = (
        "--output=/scratch/t-1234/pwlab-%j-0123456789ab.out"
        " --comment=pwlab:0123456789abcdef0123456789abcdef"
    )
    normalized = subs.normalize(text)
    assert normalized == ("--output=<pw:workdir>/pwlab-%j-<pw:id1.12>.out --comment=pwlab:<pw:id1>")
    assert subs.restore(normalized) == text
    assert subs.restore("${SLURM_ARRAY_TASK_ID:-$SGE_TASK_ID} <pw:unknown>") == (
        "${SLURM_ARRAY_TASK_ID:-$SGE_TASK_ID} <pw:unknown>"
    )


def test_repeated_answers_are_dropped_changes_never():
    events = [
        run(["squeue"], "PENDING"),
        run(["squeue"], "PENDING"),
        run(["scontrol", "uhold", "5"]),
        run(["scontrol", "uhold", "5"]),
        run(["squeue"], "PENDING"),
        run(["squeue"], "RUNNING"),
    ]
    assert [e["stdout"] for e in dedupe(events)] == ["PENDING", "", "", "RUNNING"]


def test_secrets_are_masked_without_moving_offsets():
    data = b"HOME=/root\nMY_API_TOKEN=abc123\nPWLAB_VISIBLE=fine\n"
    masked = mask_secrets(data)
    assert masked == b"HOME=/root\nMY_API_TOKEN=******\nPWLAB_VISIBLE=fine\n"
    assert len(masked) == len(data)


def test_tokens_are_replaced_by_an_unsigned_one_for_the_same_user():
    real = fake_jwt("x.eyJzdW4iOiAiYWxpY2UifQ.sig").replace(".replayed", ".c2lnbmF0dXJl")
    scrubbed = scrub_text(f"SLURM_JWT={real}\n")
    token = scrubbed.strip().split("=", 1)[1]
    assert token.endswith(".replayed") and jwt_claims(token)["sun"] == "alice"
    assert jwt_claims(token)["exp"] > time.time() + 10 * 365 * 86400


def test_recordings_name_their_scheduler_and_hold_no_tokens():
    files = sorted(RECORDINGS.glob("*/*.json"))
    assert files, "no recordings: make record"
    for path in files:
        text = path.read_text()
        document = json.loads(text)
        assert document["scheduler"], path
        for token in re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]*", text):
            assert token.endswith(".replayed"), (path, token[:20])
