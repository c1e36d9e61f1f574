"""The SSH transport's command channels (long-lived remote shells) against the real test sshd."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parallelworks_lab.transports import ssh_shell
from parallelworks_lab.transports.base import TransportError
from parallelworks_lab.transports.ssh import SSHTransport, SSHTransportSettings

from .support.dev_cluster import transport_entry


def make_transport(info: dict[str, Any], **overrides: Any) -> SSHTransport:
    settings = {**transport_entry("slurm-ssh", info), **overrides}
    return SSHTransport(SSHTransportSettings(**settings))


@contextlib.asynccontextmanager
async def connected(info: dict[str, Any], **overrides: Any) -> AsyncIterator[SSHTransport]:
    transport = make_transport(info, **overrides)
    try:
        yield transport
    finally:
        await transport.close()


async def count_sessions(transport: SSHTransport) -> list[str]:
    """Connect, and record every session channel asyncssh opens on that connection from now on."""
    conn = await transport._connect()
    opened: list[str] = []
    create_session = conn.create_session

    async def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(str(kwargs.get("command") or (args[1] if len(args) > 1 else "")))
        return await create_session(*args, **kwargs)

    conn.create_session = counting  # type: ignore[method-assign]
    return opened


def sh(script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, "sh", *args]


# -- output, stderr, exit status -----------------------------------------------------------------

ODD_TEXT = "bell\a esc\x1b[31m cr\r tab\t backslash\\n quote' \" ü € 😀 $HOME `id` $(id)"


# (argv, stdout, stderr, exit status) a command must give back exactly, on any transport.
OUTPUT_CASES = [
    (sh("printf 'no newline'"), "no newline", "", 0),
    (sh("printf 'out\\n'; printf 'err' >&2; exit 3"), "out\n", "err", 3),
    (sh("exit 255"), "", "", 255),
    (sh('printf "%s" "$1"; printf "%s" "$1" >&2', ODD_TEXT), ODD_TEXT, ODD_TEXT, 0),
    (sh("printf 'a\\000b\\n\\n\\n'"), "a\x00b\n\n\n", "", 0),
    (sh("printf '\\377ok'"), "\ufffdok", "", 0),  # not UTF-8: replaced, not an error
    (["true"], "", "", 0),
]


@pytest.mark.parametrize(("argv", "stdout", "stderr", "status"), OUTPUT_CASES)
@pytest.mark.parametrize("channels", [4, 0], ids=["shell", "session-per-command"])
async def test_output_and_status_are_exact(slurm_cluster, channels, argv, stdout, stderr, status):
    async with connected(slurm_cluster, command_channels=channels) as transport:
        for _ in range(2):  # the second run is on a reused shell
            result = await transport.run(argv, timeout=10)
            assert (result.stdout, result.stderr, result.returncode) == (stdout, stderr, status)


@pytest.mark.parametrize("channels", [4, 0], ids=["shell", "session-per-command"])
async def test_a_command_without_input_reads_end_of_file(slurm_cluster, channels):
    async with connected(slurm_cluster, command_channels=channels) as transport:
        result = await transport.run(["cat"], timeout=5)
        assert (result.stdout, result.stderr, result.returncode) == ("", "", 0)


async def test_unknown_command_is_127(slurm_cluster):
    async with connected(slurm_cluster) as transport:
        result = await transport.run(["pwlab-no-such-command"], timeout=10)
        assert result.returncode == 127
        assert "not found" in result.stderr


async def test_a_command_cannot_touch_the_long_lived_shell(slurm_cluster):
    """Builtins run in a subshell: no `cd`, `exit` or `exec` outlives its command, and a command
    without input reads nothing (not the frames that follow)."""
    async with connected(slurm_cluster) as transport:
        home = (await transport.run(["pwd"])).stdout
        assert (await transport.run(["cd", "/"])).returncode == 0
        assert (await transport.run(["exit", "3"])).returncode == 3
        assert (await transport.run(["exec", "true"])).returncode == 0
        reading = await transport.run(["cat"], timeout=5)
        assert (reading.stdout, reading.returncode) == ("", 0)
        assert (await transport.run(["pwd"])).stdout == home
        assert transport.channels_opened == 1


async def test_output_that_looks_like_a_marker_is_output(slurm_cluster):
    """Output shaped like the channel's framing (markers, status lines) is returned as is."""
    async with connected(slurm_cluster) as transport:
        fake = secrets.token_hex(16)
        text = (
            f"{fake} 0\n{fake[:16]}{fake[16:]} 1\n{fake}\n"
            f"printf '%s%s %d\\n' {fake[:16]} {fake[16:]} \"$?\"\n"
            f"PWLAB_IN_{secrets.token_hex(16)}\n) </dev/null\n"
        )
        result = await transport.run(sh('printf "%s" "$1"; printf "%s" "$1" >&2; exit 4', text))
        assert (result.stdout, result.stderr, result.returncode) == (text, text, 4)
        again = await transport.run(["echo", "next"])
        assert (again.stdout, again.stderr, again.returncode) == ("next\n", "", 0)


async def test_output_larger_than_the_channel_window(slurm_cluster):
    """Several MB on both streams at once (asyncssh's readuntil gives up past its window)."""
    async with connected(slurm_cluster) as transport:
        script = (
            "head -c 3000000 /dev/zero | tr '\\0' a; head -c 1500000 /dev/zero | tr '\\0' b >&2"
        )
        result = await transport.run(sh(script), timeout=30)
        assert result.stdout == "a" * 3_000_000
        assert result.stderr == "b" * 1_500_000


# -- stdin ---------------------------------------------------------------------------------------


def payload(canary: Path) -> str:
    """A batch script full of things a shell would run or stop at, were it to parse the text."""
    return (
        "#!/bin/bash\n"
        f"echo $(touch {canary}) `touch {canary}` ${{HOME}} $((1+1)) \\\n"
        "EOF\n"
        "'EOF'\n"
        "PWLAB_IN_00000000000000000000000000000000\n"
        f") ; touch {canary}\n"
        'printf "%s%s %d\\n" a b "$?"\n'
        "exit 0\n"
        "END\n"
    )


def stdin_cases(canary: Path) -> dict[str, str]:
    text = payload(canary)
    return {
        "plain": text,
        "no-final-newline": text.rstrip("\n"),
        "control-and-utf8": text + "cr\r\nnul\x00 esc\x1b ü € 😀\n",
        "empty": "",
        "newlines-only": "\n\n",
        "large": text * 3000,
    }


@pytest.mark.parametrize(
    "case", ["plain", "no-final-newline", "control-and-utf8", "empty", "newlines-only", "large"]
)
@pytest.mark.parametrize("channels", [4, 0], ids=["shell", "session-per-command"])
async def test_stdin_is_passed_byte_exact_and_never_run(slurm_cluster, channels, case):
    async with connected(slurm_cluster, command_channels=channels) as transport:
        canary = Path(slurm_cluster["scratch_dir"]) / f"canary-{uuid.uuid4().hex}"
        data = stdin_cases(canary)[case]
        dump = await transport.run(["od", "-An", "-v", "-tx1"], input=data, timeout=30)
        assert dump.returncode == 0, dump.stderr
        assert "".join(dump.stdout.split()) == data.encode().hex()
        echoed = await transport.run(["cat"], input=data, timeout=30)
        assert echoed.stdout == data
        assert not canary.exists(), "the shell ran part of the command's stdin"


def test_frame_sends_plain_text_as_is_and_the_rest_as_base64():
    plain = b"#!/bin/bash\necho $(id) `id`\nEOF\n"
    framed = ssh_shell.frame("'cat'", plain, "m" * 32)
    assert framed.startswith(b"('cat') <<'PWLAB_IN_") and plain in framed
    for other in (b"no newline", b"cr\r\n", "ü\n".encode(), b"nul\x00\n", b""):
        framed = ssh_shell.frame("'cat'", other, "m" * 32)
        assert framed.startswith(b"(base64 -d | 'cat') <<'PWLAB_IN_")
        assert base64.encodebytes(other) in framed
    # The marker is never sent whole: not even an echo of the frame contains it.
    assert b"m" * 32 not in ssh_shell.frame("'cat'", plain, "m" * 32)


def odd_directory(parent: Path) -> Path:
    """A directory whose name a shell would expand, split or take for an option."""
    path = parent / f"-dir with 'quote' $(touch x) `id` {uuid.uuid4().hex[:6]}"
    path.mkdir()
    return path


@pytest.mark.parametrize("channels", [4, 0], ids=["shell", "session-per-command"])
async def test_a_command_runs_in_its_directory_or_not_at_all(slurm_cluster, channels):
    scratch = Path(slurm_cluster["scratch_dir"])
    directory = odd_directory(scratch)
    a_file = scratch / f"file-{uuid.uuid4().hex}"
    a_file.write_text("")
    canary = scratch / f"canary-{uuid.uuid4().hex}"
    async with connected(slurm_cluster, command_channels=channels) as transport:
        result = await transport.run(["pwd"], cwd=str(directory), input="x\n", timeout=10)
        assert (result.returncode, result.stdout) == (0, f"{directory}\n"), result
        for where in (scratch / "missing", a_file):
            with pytest.raises(NotADirectoryError):
                await transport.run(["touch", str(canary)], cwd=str(where), timeout=10)
        assert not canary.exists(), "the command ran although its directory was missing"
        if channels:
            # Checked by the shell in the same exchange: no SFTP round trip before it.
            assert transport._sftp is None
        # The shell is still in order, and still where it was.
        after = await transport.run(["pwd"], timeout=10)
        assert after.returncode == 0 and after.stdout != f"{directory}\n"


async def test_env_values_are_passed_exactly(slurm_cluster):
    async with connected(slurm_cluster) as transport:
        canary = Path(slurm_cluster["scratch_dir"]) / f"canary-{uuid.uuid4().hex}"
        value = f'it\'s $(touch {canary}) `touch {canary}` $HOME \\ "q"\nline 2'
        env = {"PWLAB_A": value, "PPID": "7", "PWLAB_EMPTY": ""}
        for name, expected in env.items():
            result = await transport.run(["printenv", name], env=env, timeout=10)
            assert (result.returncode, result.stdout) == (0, expected + "\n")
        assert not canary.exists()


# -- concurrency, timeouts, lost connections, channel count ---------------------------------------


async def test_concurrent_commands_each_get_their_own_output(slurm_cluster):
    async with connected(slurm_cluster) as transport:

        async def one(i: int) -> None:
            script = (
                'read line; printf "out %s %s" "$1" "$line"; printf "err %s" "$1" >&2; exit "$2"'
            )
            result = await transport.run(
                sh(script, str(i), str(i % 7)), input=f"in{i}\n", timeout=30
            )
            expected = (f"out {i} in{i}", f"err {i}", i % 7)
            assert (result.stdout, result.stderr, result.returncode) == expected

        for _ in range(2):
            await asyncio.gather(*(one(i) for i in range(20)))
        assert transport.connects == 1
        # All the shells the pool may have were used; the rest ran on sessions of their own
        # rather than queueing behind (or interleaving with) a busy shell.
        pool = transport._shells
        assert pool is not None and pool.opened == transport.settings.command_channels
        assert transport.channels_opened > pool.opened


async def test_a_command_past_its_timeout_raises_and_the_next_one_works(slurm_cluster):
    async with connected(slurm_cluster) as transport:
        await transport.run(["true"])
        started = time.monotonic()
        with pytest.raises(TransportError, match="did not answer within"):
            await transport.run(sh("sleep 20; echo late"), timeout=0.5)
        assert time.monotonic() - started < 5
        opened = transport.channels_opened
        for _ in range(3):
            result = await transport.run(["echo", "after"], timeout=10)
            assert (result.stdout, result.stderr, result.returncode) == ("after\n", "", 0)
        # The timed-out shell was dropped (its late output can never reach another command) and
        # exactly one new one serves what follows.
        assert transport.channels_opened == opened + 1
        assert transport.connects == 1


@pytest.mark.parametrize("noticed", [True, False])
async def test_reconnects_after_the_server_drops_the_connection(slurm_cluster, noticed):
    """sshd's process for our connection is killed; with ``noticed`` False the next command is
    written to the shell before the client has seen the connection go."""
    async with connected(slurm_cluster) as transport:
        shell_pid = int((await transport.run(sh("echo $PPID"))).stdout)
        with open(f"/proc/{shell_pid}/stat") as stat:
            sshd_pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{sshd_pid}/cmdline", "rb") as cmdline:
            assert cmdline.read().startswith(b"sshd"), "expected the sshd session process"
        conn = transport._conn
        assert conn is not None
        os.kill(sshd_pid, signal.SIGTERM)
        if noticed:
            await asyncio.wait_for(conn.wait_closed(), 10)
        result = await transport.run(["echo", "back"], timeout=10)
        assert (result.stdout, result.returncode) == ("back\n", 0)
        assert transport.connects == 2
        assert conn.is_closed()


async def test_reconnects_when_the_drop_is_noticed_mid_command(slurm_cluster):
    async with connected(slurm_cluster) as transport:
        await transport.run(["true"])
        conn = transport._conn
        assert conn is not None
        conn.abort()  # closed under a shell that is about to be written to
        result = await transport.run(["echo", "back"], timeout=10)
        assert (result.stdout, result.returncode) == ("back\n", 0)
        assert transport.connects == 2


@pytest.mark.parametrize(("channels", "expected"), [(4, 1), (0, 10)])
async def test_session_channels_per_command(slurm_cluster, channels, expected):
    """Ten commands in a row: one session (the shell) instead of one each."""
    transport = make_transport(slurm_cluster, command_channels=channels)
    try:
        opened = await count_sessions(transport)
        for i in range(10):
            result = await transport.run(["echo", str(i)], timeout=10)
            assert result.stdout == f"{i}\n"
        assert len(opened) == expected, opened
        assert transport.channels_opened == expected
    finally:
        await transport.close()


# -- logins that give no usable shell -------------------------------------------------------------


@pytest.mark.parametrize(
    "shell_command",
    [
        "exit 0",  # a forced command that ignores what we asked for
        "cat",  # one that echoes our input back: the split marker cannot be forged by it
        "echo 'This account is restricted' >&2; exit 1",
    ],
)
async def test_login_without_a_shell_falls_back_to_one_session_per_command(
    slurm_cluster, monkeypatch, shell_command
):
    monkeypatch.setattr(ssh_shell, "SHELL_COMMAND", shell_command)
    monkeypatch.setattr(ssh_shell, "PROBE_TIMEOUT", 1.0)
    transport = make_transport(slurm_cluster)
    try:
        opened = await count_sessions(transport)
        for i in range(3):
            result = await transport.run(sh('printf "%s" "$1"; exit 2', str(i)), timeout=10)
            assert (result.stdout, result.returncode) == (str(i), 2)
        pool = transport._shells
        assert pool is not None and pool.disabled
        # One try at a shell, then a session of its own per command.
        assert opened[0] == shell_command and len(opened) == 4, opened
    finally:
        await transport.close()


async def test_login_noise_is_not_mistaken_for_output(slurm_cluster, monkeypatch):
    """What rc files print at login (stdout and stderr) is drained before the first command."""
    monkeypatch.setattr(
        ssh_shell, "SHELL_COMMAND", "echo motd; printf 'no newline'; echo warn >&2; exec /bin/sh"
    )
    transport = make_transport(slurm_cluster)
    try:
        result = await transport.run(sh("echo first; echo e >&2"), timeout=10)
        assert (result.stdout, result.stderr) == ("first\n", "e\n")
    finally:
        await transport.close()


@pytest.mark.parametrize("idempotent", [False, True])
@pytest.mark.parametrize("channels", [4, 0], ids=["shell", "session-per-command"])
async def test_a_submit_is_not_sent_again_after_a_drop_mid_command(
    slurm_cluster, channels, idempotent
):
    """A connection lost while a command runs: a query is run again on a new connection, but a
    submit (``idempotent=False``) is not — it may have queued a job already; the caller finds it
    by its token instead of queueing a second one."""
    folder = Path(slurm_cluster["scratch_dir"]) / f"drop-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    os.chmod(folder, 0o777)
    runs = folder / "runs"
    async with connected(slurm_cluster, command_channels=channels) as transport:
        await transport.run(["true"])
        conn = transport._conn
        assert conn is not None
        command = transport.run(
            sh('echo run >> "$1"; sleep 2', str(runs)), timeout=20, idempotent=idempotent
        )
        task = asyncio.ensure_future(command)
        deadline = time.monotonic() + 10
        while not runs.exists():
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.02)
        conn.abort()
        if idempotent:
            assert (await task).returncode == 0
            assert runs.read_text() == "run\nrun\n"
        else:
            with pytest.raises(TransportError, match="lost"):
                await task
            await asyncio.sleep(1.0)  # a second run would have written by now
            assert runs.read_text() == "run\n"
        # Either way the transport goes on, on a new connection.
        assert (await transport.run(["echo", "next"], timeout=10)).stdout == "next\n"
        assert transport.connects == 2
