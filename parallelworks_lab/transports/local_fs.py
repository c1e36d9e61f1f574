"""Whether a directory on this machine can be checked on the event loop, and the answer.

A stat on a local disk takes microseconds, much less than handing it to a worker thread (the
hand-off, the thread's wake-up and the loop's wake-up cost tenths of a millisecond, and
milliseconds at p95 on a loaded machine). A stat on a network filesystem (NFS, Lustre, GPFS,
CIFS, sshfs, an automount) can block for as long as its server is away, and a blocked event
loop is a JupyterLab that no longer answers at all: such paths are still checked in a thread.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Optional

import psutil

#: Filesystems whose stat is served from this machine's own memory or disks.
LOCAL_FS_TYPES = frozenset(
    {
        "bcachefs",
        "btrfs",
        "exfat",
        "ext2",
        "ext3",
        "ext4",
        "f2fs",
        "jfs",
        "overlay",
        "ramfs",
        "reiserfs",
        "tmpfs",
        "vfat",
        "xfs",
        "zfs",
    }
)
#: How long the mount table is trusted. A filesystem mounted under a local folder since is
#: taken for local until then: a window of seconds, for the one stat that crosses into it.
MOUNTS_TTL = 30.0


class MountTable:
    """This machine's mount points and their filesystem types, re-read every ``ttl`` seconds."""

    def __init__(self, ttl: float = MOUNTS_TTL) -> None:
        self.ttl = ttl
        self._read_at = -ttl
        self._types: dict[str, str] = {}

    def _mounts(self) -> dict[str, str]:
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            partitions = psutil.disk_partitions(all=True)
            self._types = {p.mountpoint: p.fstype for p in partitions}
            self._read_at = now
        return self._types

    def all_local(self, path: str) -> bool:
        """Whether every filesystem the absolute, normalized ``path`` crosses is local."""
        mounts = self._mounts()
        if mounts.get("/") not in LOCAL_FS_TYPES:
            return False  # also when the table could not be read: assume the worst
        folder = ""
        for part in path.strip("/").split("/"):
            if not part:
                continue
            folder = f"{folder}/{part}"
            fstype = mounts.get(folder)
            if fstype is not None and fstype not in LOCAL_FS_TYPES:
                return False
        return True


MOUNTS = MountTable()


def local_is_dir(path: str, mounts: MountTable = MOUNTS) -> Optional[bool]:
    """``os.path.isdir(path)`` when it cannot block (the path and every folder above it on
    local filesystems, no symbolic link on the way); None when it could: ask a thread then."""
    if not os.path.isabs(path) or "/../" in f"{path}/" or "/./" in f"{path}/":
        return None
    path = os.path.normpath(path)  # only repeated or trailing slashes are left to fold
    if not mounts.all_local(path):
        return None
    mode = 0
    folder = ""
    for part in path.strip("/").split("/"):
        if not part:
            break  # the root itself
        folder = f"{folder}/{part}"
        try:
            mode = os.lstat(folder).st_mode
        except OSError:
            return False  # as os.path.isdir: missing, not a folder, not allowed
        if stat.S_ISLNK(mode):
            return None  # the link may lead onto a network filesystem
    return folder == "" or stat.S_ISDIR(mode)
