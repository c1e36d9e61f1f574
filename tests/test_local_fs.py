"""The working-directory check of the local transport: answered on the event loop where a
stat cannot block (local filesystems), in a worker thread where it could."""

from __future__ import annotations

import os
from pathlib import Path

from parallelworks_lab.transports.local import LocalTransport, LocalTransportSettings
from parallelworks_lab.transports.local_fs import MountTable, local_is_dir


class FixedMounts(MountTable):
    def __init__(self, types: dict[str, str]) -> None:
        super().__init__()
        self._fixed = types

    def _mounts(self) -> dict[str, str]:
        return self._fixed


def test_answers_like_isdir_on_a_local_disk(tmp_path: Path) -> None:
    mounts = FixedMounts({"/": "ext4"})
    (tmp_path / "file").write_text("x")
    for path in (tmp_path, tmp_path / "missing", tmp_path / "file", tmp_path / "file" / "x"):
        assert local_is_dir(str(path), mounts) is os.path.isdir(path), path
    assert local_is_dir(f"{tmp_path}//", mounts) is True
    assert local_is_dir("/", mounts) is True


def test_leaves_to_a_thread_what_could_block(tmp_path: Path) -> None:
    local = FixedMounts({"/": "ext4"})
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    # A link may lead onto a network filesystem; '..' is resolved by the kernel, not by us.
    assert local_is_dir(str(tmp_path / "link"), local) is None
    assert local_is_dir(f"{tmp_path}/real/../real", local) is None
    assert local_is_dir("relative/path", local) is None
    # Any network filesystem on the way, at the path or above it.
    on_nfs = FixedMounts({"/": "ext4", str(tmp_path): "nfs4"})
    assert local_is_dir(str(tmp_path / "real"), on_nfs) is None
    assert local_is_dir(str(tmp_path), on_nfs) is None
    # A table that could not be read says nothing is local.
    assert local_is_dir(str(tmp_path), FixedMounts({})) is None


async def test_transport_says_a_missing_directory_is_missing(tmp_path: Path) -> None:
    transport = LocalTransport(LocalTransportSettings())
    try:
        assert await transport.is_dir(str(tmp_path)) is True
        assert await transport.is_dir(str(tmp_path / "missing")) is False
        (tmp_path / "link").symlink_to(tmp_path)  # through the worker thread
        assert await transport.is_dir(str(tmp_path / "link")) is True
        (tmp_path / "file").write_text("x")
        assert await transport.is_dir(str(tmp_path / "file")) is False
    finally:
        await transport.close()
