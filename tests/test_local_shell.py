"""The local transport's command channels: long-lived /bin/sh helpers on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import stat
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from parallelworks_lab.transports import local_shell
from parallelworks_lab.transports.base import TransportError
from parallelworks_lab.transports.local import LocalTransport, LocalTransportSettings

from .test_ssh_channel import ODD_TEXT, odd_directory, sh, stdin_cases


@contextlib.asynccontextmanager
async def transport(channels: int = 2) -> AsyncIterator[LocalTransport]:
    local = LocalTransport(LocalTransportSettings(command_channels=channels))
    try:
        yield local
    finally:
        await local.close()


async def helper_pid(local: LocalTransport) -> int:
    """The pid of the shell that runs commands (the parent of the command's subshell)."""
    return int((await local.run(sh("echo $PPID"))).stdout)


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    ("argv", "stdout", "stderr", "status"),
    [
        (sh("printf 'no newline'"), "no newline", "", 0),
        (sh("printf 'out\\n'; printf 'err' >&2; exit 3"), "out\n", "err", 3),
        (sh("exit 255"), "", "", 255),
        (sh('printf "%s" "$1"; printf "%s" "$1" >&2', ODD_TEXT), ODD_TEXT, ODD_TEXT, 0),
        (sh("printf 'a\\000b\\n\\n\\n'"), "a\x00b\n\n\n", "", 0),
        (sh("printf '\\377ok'"), "\ufffdok", "", 0),
        (["true"], "", "", 0),
    ],
)
@pytest.mark.parametrize("channels", [2, 0], ids=["helper", "direct"])
async def test_output_and_status_are_exact(channels, argv, stdout, stderr, status):
    async with transport(channels) as local:
        for _ in range(2):  # the second run is on the same helper
            result = await local.run(argv, timeout=10)
            assert (result.stdout, result.stderr, result.returncode) == (stdout, stderr, status)
        assert local.shells.started == (1 if channels else 0)


async def test_commands_run_on_one_helper_not_as_children_of_the_server():
    async with transport() as local:
        pids = {await helper_pid(local) for _ in range(5)}
        assert len(pids) == 1 and os.getpid() not in pids
        assert local.shells.started == 1


@pytest.mark.parametrize("channels", [2, 0], ids=["helper", "direct"])
async def test_a_command_without_input_reads_end_of_file(channels):
    async with transport(channels) as local:
        result = await local.run(["cat"], timeout=5)
        assert (result.stdout, result.stderr, result.returncode) == ("", "", 0)


@pytest.mark.parametrize("channels", [2, 0], ids=["helper", "direct"])
async def test_argv_runs_the_program_never_a_shell_builtin(tmp_path, channels):
    """As when started directly: `echo` is /bin/echo (sh's builtin would turn the \\n into a
    newline), and a program earlier on the command's PATH wins over a builtin of its name."""
    wrapper = tmp_path / "bin" / "true"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\necho wrapped\n")
    wrapper.chmod(0o755)
    async with transport(channels) as local:
        assert (await local.run(["echo", "a\\nb"])).stdout == "a\\nb\n"
        path = f"{wrapper.parent}:{os.environ['PATH']}"
        assert (await local.run(["true"], env={"PATH": path})).stdout == "wrapped\n"


async def test_a_command_cannot_touch_the_long_lived_shell():
    async with transport() as local:
        here = (await local.run(["pwd"])).stdout
        assert (await local.run(sh("cd /; exit 3"))).returncode == 3
        assert (await local.run(sh("kill -9 $$"))).returncode == 137
        reading = await local.run(["cat"], timeout=5)
        assert (reading.stdout, reading.returncode) == ("", 0)
        assert (await local.run(["pwd"])).stdout == here
        assert local.shells.started == 1


async def test_output_that_looks_like_a_marker_is_output():
    async with transport() as local:
        fake = secrets.token_hex(16)
        text = (
            f"{fake} 0\n{fake[:16]}{fake[16:]} 1\n{fake}\n"
            f"printf '%s%s %d\\n' {fake[:16]} {fake[16:]} \"$?\"\n"
            f"PWLAB_IN_{secrets.token_hex(16)}\n) </dev/null\n"
        )
        result = await local.run(sh('printf "%s" "$1"; printf "%s" "$1" >&2; exit 4', text))
        assert (result.stdout, result.stderr, result.returncode) == (text, text, 4)
        again = await local.run(["echo", "next"])
        assert (again.stdout, again.stderr, again.returncode) == ("next\n", "", 0)


async def test_large_output_on_both_streams_at_once():
    async with transport() as local:
        script = (
            "head -c 3000000 /dev/zero | tr '\\0' a; head -c 1500000 /dev/zero | tr '\\0' b >&2"
        )
        result = await local.run(sh(script), timeout=30)
        assert result.stdout == "a" * 3_000_000
        assert result.stderr == "b" * 1_500_000


@pytest.mark.parametrize(
    "case", ["plain", "no-final-newline", "control-and-utf8", "empty", "newlines-only", "large"]
)
@pytest.mark.parametrize("channels", [2, 0], ids=["helper", "direct"])
async def test_stdin_is_passed_byte_exact_and_never_run(tmp_path, channels, case):
    async with transport(channels) as local:
        canary = tmp_path / f"canary-{uuid.uuid4().hex}"
        data = stdin_cases(canary)[case]
        dump = await local.run(["od", "-An", "-v", "-tx1"], input=data, timeout=30)
        assert dump.returncode == 0, dump.stderr
        assert "".join(dump.stdout.split()) == data.encode().hex()
        echoed = await local.run(["cat"], input=data, timeout=30)
        assert echoed.stdout == data
        assert not canary.exists(), "the shell ran part of the command's stdin"


@pytest.mark.parametrize("channels", [2, 0], ids=["helper", "direct"])
async def test_a_command_runs_in_its_directory_or_not_at_all(tmp_path, channels):
    directory = odd_directory(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    canary = tmp_path / "canary"
    async with transport(channels) as local:
        result = await local.run(["pwd"], cwd=str(directory), input="x\n", umask=0o077)
        assert (result.returncode, result.stdout) == (0, f"{directory}\n"), result
        for where in (tmp_path / "missing", a_file):
            with pytest.raises(NotADirectoryError):
                await local.run(["touch", str(canary)], cwd=str(where))
        assert not canary.exists(), "the command ran although its directory was missing"
        after = await local.run(["pwd"])
        assert after.returncode == 0 and after.stdout == f"{os.getcwd()}\n"


async def test_env_values_and_umask_reach_the_command(tmp_path):
    async with transport() as local:
        canary = tmp_path / f"canary-{uuid.uuid4().hex}"
        value = f'it\'s $(touch {canary}) `touch {canary}` $HOME \\ "q"\nline 2'
        env = {"PWLAB_A": value, "PPID": "7", "PWLAB_EMPTY": ""}
        for name, expected in env.items():
            result = await local.run(["printenv", name], env=env, timeout=10)
            assert (result.returncode, result.stdout) == (0, expected + "\n")
        created = tmp_path / "made"
        await local.run(["touch", str(created)], umask=0o077, input="x\n")
        assert stat.S_IMODE(created.stat().st_mode) == 0o600
        assert not canary.exists()
        # The umask was the command's own: the next one has the helper's again.
        assert (await local.run(["sh", "-c", "umask"])).stdout.strip() == f"{os.umask(0o22):04o}"
        os.umask(0o22)


async def test_the_servers_secrets_do_not_reach_commands(monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", "server-secret")
    monkeypatch.setenv("PWLAB_VISIBLE", "yes")
    async with transport() as local:
        result = await local.run(["env"])
        assert "PWLAB_VISIBLE=yes" in result.stdout
        assert "server-secret" not in result.stdout


async def test_a_missing_command_is_a_transport_error_as_when_run_directly():
    for channels in (2, 0):
        async with transport(channels) as local:
            with pytest.raises(TransportError, match="cannot run pwlab-no-such-command"):
                await local.run(["pwlab-no-such-command"], timeout=10)
            # A command that exists and exits 127 itself is an answer, not an error.
            assert (await local.run(sh("exit 127"))).returncode == 127


async def test_concurrent_commands_each_get_their_own_output():
    async with transport() as local:

        async def one(i: int) -> None:
            script = (
                'read line; printf "out %s %s" "$1" "$line"; printf "err %s" "$1" >&2; exit "$2"'
            )
            result = await local.run(sh(script, str(i), str(i % 7)), input=f"in{i}\n", timeout=30)
            expected = (f"out {i} in{i}", f"err {i}", i % 7)
            assert (result.stdout, result.stderr, result.returncode) == expected

        for _ in range(2):
            await asyncio.gather(*(one(i) for i in range(20)))
        # Never more helpers than configured: the rest ran directly rather than queue behind
        # (or interleave with) a busy helper.
        assert local.shells.started == 2


async def test_a_command_past_its_timeout_is_killed_with_its_helper(tmp_path):
    async with transport() as local:
        pid = await helper_pid(local)
        started = time.monotonic()
        late = tmp_path / "late"
        with pytest.raises(TransportError, match="did not answer within"):
            await local.run(sh('sleep 3; touch "$1"', str(late)), timeout=0.5)
        assert time.monotonic() - started < 2.5
        for _ in range(3):
            result = await local.run(["echo", "after"], timeout=10)
            assert (result.stdout, result.stderr, result.returncode) == ("after\n", "", 0)
        assert await helper_pid(local) != pid
        assert local.shells.started == 2
        await asyncio.sleep(3.5)
        assert not late.exists(), "the timed-out command went on running"
        assert not is_running(pid)


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_dead_helper_is_replaced(idempotent):
    """Killed between commands (e.g. by an OOM killer): the next command still runs, once."""
    async with transport() as local:
        pid = await helper_pid(local)
        os.kill(pid, signal.SIGKILL)
        while is_running(pid):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the server's event loop sees the helper's pipes close
        result = await local.run(["echo", "again"], timeout=10, idempotent=idempotent)
        assert (result.stdout, result.returncode) == ("again\n", 0)
        assert await helper_pid(local) != pid


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_submit_is_not_run_again_when_its_helper_dies_mid_command(tmp_path, idempotent):
    """A query is run again (directly) when its helper dies under it; a submit is not — it may
    have queued a job already, and the caller reconciles it by its token."""
    runs = tmp_path / "runs"
    async with transport() as local:
        pid = await helper_pid(local)
        task = asyncio.ensure_future(
            local.run(sh('echo run >> "$1"; sleep 1', str(runs)), idempotent=idempotent)
        )
        deadline = time.monotonic() + 10
        while not runs.exists():
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.02)
        os.killpg(pid, signal.SIGKILL)
        if idempotent:
            assert (await task).returncode == 0
            assert runs.read_text() == "run\nrun\n"
        else:
            with pytest.raises(TransportError, match="ended"):
                await task
            await asyncio.sleep(1.5)
            assert runs.read_text() == "run\n"
        assert (await local.run(["echo", "next"])).stdout == "next\n"


async def test_no_helper_falls_back_to_running_commands_directly(monkeypatch):
    monkeypatch.setattr(local_shell, "SHELL", "/nonexistent/sh")
    async with transport() as local:
        for i in range(3):
            result = await local.run(sh('printf "%s" "$1"; exit 2', str(i)))
            assert (result.stdout, result.returncode) == (str(i), 2)
        assert local.shells.disabled and local.shells.started == 1


async def test_close_ends_the_helpers():
    local = LocalTransport(LocalTransportSettings())
    pid = await helper_pid(local)
    await local.close()
    assert not is_running(pid)
