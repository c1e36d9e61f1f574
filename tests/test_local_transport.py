"""The local transport: scheduler commands started by the server itself (spawn.run_child),
exactly as given (argv, stdin, env, umask, directory), never through a shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from parallelworks_lab.transports.base import TransportError
from parallelworks_lab.transports.local import LocalTransport, LocalTransportSettings

from .test_ssh_channel import ODD_TEXT, OUTPUT_CASES, odd_directory, sh, stdin_cases


@contextlib.asynccontextmanager
async def transport() -> AsyncIterator[LocalTransport]:
    local = LocalTransport(LocalTransportSettings())
    try:
        yield local
    finally:
        await local.close()


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("argv", "stdout", "stderr", "status"), OUTPUT_CASES)
async def test_output_and_status_are_exact(argv, stdout, stderr, status):
    async with transport() as local:
        result = await local.run(argv, timeout=10)
        assert (result.stdout, result.stderr, result.returncode) == (stdout, stderr, status)


async def test_a_command_without_input_reads_end_of_file():
    async with transport() as local:
        result = await local.run(["cat"], timeout=5)
        assert (result.stdout, result.stderr, result.returncode) == ("", "", 0)


async def test_argv_runs_the_program_never_a_shell_builtin(tmp_path):
    """`echo` is /bin/echo (sh's builtin would turn the \\n into a newline), and the program is
    looked up on the command's own PATH, first match first."""
    wrapper = tmp_path / "bin" / "true"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\necho wrapped\n")
    wrapper.chmod(0o755)
    async with transport() as local:
        assert (await local.run(["echo", "a\\nb"])).stdout == "a\\nb\n"
        path = f"{wrapper.parent}:{os.environ['PATH']}"
        assert (await local.run(["true"], env={"PATH": path})).stdout == "wrapped\n"
        assert (await local.run(["true"])).stdout == ""


async def test_a_program_that_moves_is_found_again(tmp_path):
    """Where a program is, is remembered; when it moves, the next run looks it up again."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
    tool = first / "pwlab-tool"
    tool.write_text("#!/bin/sh\necho here\n")
    tool.chmod(0o755)
    env = {"PATH": f"{first}:{second}:{os.environ['PATH']}"}
    async with transport() as local:
        assert (await local.run(["pwlab-tool"], env=env)).stdout == "here\n"
        tool.rename(second / "pwlab-tool")
        assert (await local.run(["pwlab-tool"], env=env)).stdout == "here\n"
        (second / "pwlab-tool").unlink()
        with pytest.raises(TransportError, match="cannot run pwlab-tool"):
            await local.run(["pwlab-tool"], env=env)


async def test_output_that_looks_like_anything_is_output():
    async with transport() as local:
        text = "0\n) </dev/null\nPWLAB_IN_0\n" + ODD_TEXT
        result = await local.run(sh('printf "%s" "$1"; printf "%s" "$1" >&2; exit 4', text))
        assert (result.stdout, result.stderr, result.returncode) == (text, text, 4)


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
async def test_stdin_is_passed_byte_exact_and_never_run(tmp_path, case):
    async with transport() as local:
        canary = tmp_path / f"canary-{uuid.uuid4().hex}"
        data = stdin_cases(canary)[case]
        dump = await local.run(["od", "-An", "-v", "-tx1"], input=data, timeout=30)
        assert dump.returncode == 0, dump.stderr
        assert "".join(dump.stdout.split()) == data.encode().hex()
        echoed = await local.run(["cat"], input=data, timeout=30)
        assert echoed.stdout == data
        assert not canary.exists(), "a shell ran part of the command's stdin"


async def test_a_command_that_reads_none_of_a_large_input_is_not_an_error():
    async with transport() as local:
        result = await local.run(["true"], input="x" * 5_000_000, timeout=30)
        assert (result.returncode, result.stdout) == (0, "")


async def test_a_command_runs_in_its_directory_or_not_at_all(tmp_path):
    directory = odd_directory(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    canary = tmp_path / "canary"
    async with transport() as local:
        result = await local.run(["pwd"], cwd=str(directory), input="x\n", umask=0o077)
        assert (result.returncode, result.stdout) == (0, f"{directory}\n"), result
        for where in (tmp_path / "missing", a_file):
            with pytest.raises(NotADirectoryError):
                await local.run(["touch", str(canary)], cwd=str(where))
        assert not canary.exists(), "the command ran although its directory was missing"


async def test_env_values_and_umask_reach_the_command(tmp_path):
    async with transport() as local:
        canary = tmp_path / f"canary-{uuid.uuid4().hex}"
        value = f'it\'s $(touch {canary}) `touch {canary}` $HOME \\ "q"\nline 2'
        env = {"PWLAB_A": value, "PPID": "7", "PWLAB_EMPTY": "", "1ODD-NAME": "x"}
        for name, expected in env.items():
            result = await local.run(["printenv", name], env=env, timeout=10)
            assert (result.returncode, result.stdout) == (0, expected + "\n")
        created = tmp_path / "made"
        await local.run(["touch", str(created)], umask=0o077, input="x\n")
        assert stat.S_IMODE(created.stat().st_mode) == 0o600
        assert not canary.exists()
        # The umask was the command's own, not the server's.
        server_umask = os.umask(0o22)
        os.umask(server_umask)
        assert (await local.run(["sh", "-c", "umask"])).stdout.strip() == f"{server_umask:04o}"


async def test_the_servers_secrets_do_not_reach_commands(monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", "server-secret")
    monkeypatch.setenv("PWLAB_VISIBLE", "yes")
    async with transport() as local:
        result = await local.run(["env"])
        assert "PWLAB_VISIBLE=yes" in result.stdout
        assert "server-secret" not in result.stdout


async def test_the_servers_environment_as_it_is_now_reaches_commands(monkeypatch):
    async with transport() as local:
        await local.run(["true"])
        monkeypatch.setenv("PWLAB_LATER", "set after the transport started")
        result = await local.run(["printenv", "PWLAB_LATER"])
        assert result.stdout == "set after the transport started\n"


async def test_a_missing_command_is_a_transport_error():
    async with transport() as local:
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

        await asyncio.gather(*(one(i) for i in range(30)))


async def test_a_command_past_its_timeout_is_killed_and_reaped(tmp_path):
    pid_file, late = tmp_path / "pid", tmp_path / "late"
    async with transport() as local:
        started = time.monotonic()
        with pytest.raises(TransportError, match="did not answer within"):
            await local.run(
                sh('echo $$ > "$1"; sleep 3; touch "$2"', str(pid_file), str(late)), timeout=0.5
            )
        assert time.monotonic() - started < 2.5
        assert not is_running(int(pid_file.read_text()))  # killed, and no zombie left
        assert (await local.run(["echo", "after"], timeout=10)).stdout == "after\n"
    await asyncio.sleep(3)
    assert not late.exists(), "the timed-out command went on running"


async def test_a_cancelled_command_is_killed_and_reaped(tmp_path):
    pid_file = tmp_path / "pid"
    async with transport() as local:
        task = asyncio.ensure_future(local.run(sh('echo $$ > "$1"; exec sleep 30', str(pid_file))))
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not is_running(int(pid_file.read_text()))


async def test_without_a_pidfd_the_exit_is_seen_by_polling(monkeypatch):
    monkeypatch.delattr(os, "pidfd_open")
    async with transport() as local:
        result = await local.run(sh("sleep 0.2; echo done; exit 5"), timeout=10)
        assert (result.stdout, result.returncode) == ("done\n", 5)


async def test_no_file_descriptor_is_left_open():
    fds = set(os.listdir("/proc/self/fd"))
    async with transport() as local:
        for _ in range(20):
            await local.run(["cat"], input="x\n")
        with pytest.raises(TransportError):
            await local.run(sh("sleep 5"), timeout=0.2)
    assert set(os.listdir("/proc/self/fd")) == fds


async def test_a_configuration_written_for_the_old_helpers_still_loads():
    local = LocalTransport(LocalTransportSettings.model_validate({"command_channels": 2}))
    assert (await local.run(["echo", "ok"])).stdout == "ok\n"
    await local.close()
