"""Where a job came from: the notebook and cell (the frontends say), the git commit of its
working directory, the environment modules loaded, and the user who submitted it.

Everything here is read from files and the environment, never from a command: a submit must
stay fast, and a repository without git installed still has a commit to show.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from ..identity import unix_user
from .models import Provenance

MAX_DEPTH = 64  # folders walked up looking for .git
#: How long where a folder's repository is (or that it has none) is remembered. A submit reads
#: HEAD and the branch afresh each time (a new commit shows at once); only the walk up the
#: folders is saved, and a ``git init`` above a working directory shows within this time.
GIT_DIR_TTL = 10.0
GIT_DIR_CACHE_SIZE = 256


def find_git_dir(start: Path) -> Optional[Path]:
    """The ``.git`` folder of the repository holding ``start`` (worktrees and submodules, whose
    ``.git`` is a file naming the real folder, included)."""
    folder = start
    for _ in range(MAX_DEPTH):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.split(":", 1)[1].strip())
                return target if target.is_absolute() else (folder / target).resolve()
        if folder.parent == folder:
            return None
        folder = folder.parent
    return None


class GitDirCache:
    """:func:`find_git_dir` by folder, remembered for ``ttl`` seconds (most recent ``size``)."""

    def __init__(self, ttl: float = GIT_DIR_TTL, size: int = GIT_DIR_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._found: OrderedDict[Path, tuple[float, Optional[Path]]] = OrderedDict()

    def find(self, start: Path) -> Optional[Path]:
        now = time.monotonic()
        cached = self._found.get(start)
        if cached is not None and now - cached[0] <= self.ttl:
            self._found.move_to_end(start)
            return cached[1]
        git_dir = find_git_dir(start)
        self._found[start] = (now, git_dir)
        self._found.move_to_end(start)
        while len(self._found) > self.size:
            self._found.popitem(last=False)
        return git_dir

    def forget(self, start: Path) -> None:
        self._found.pop(start, None)


GIT_DIRS = GitDirCache()


def _packed_ref(git_dir: Path, ref: str) -> Optional[str]:
    packed = git_dir / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(errors="replace").splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha
    return None


#: What tells a file's content changed without reading it: git replaces HEAD and refs by a
#: rename (a new inode) on every change. None: the file is not there.
FileKey = Optional[tuple[int, int, int]]


def file_key(path: Path) -> FileKey:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_commit(git_dir: Path) -> tuple[Optional[str], list[Path]]:
    """The commit HEAD names in ``git_dir``, and every file read or looked for to find it."""
    looked = [git_dir / "HEAD"]
    head = looked[0].read_text(errors="replace").strip()
    if not head.startswith("ref:"):
        return head or None, looked  # a detached HEAD holds the commit itself
    ref = head.split(":", 1)[1].strip()
    common = git_dir
    commondir = git_dir / "commondir"  # a worktree keeps its branches in the main .git
    looked.append(commondir)
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        ref_file = base / ref
        looked.append(ref_file)
        if ref_file.is_file():
            return ref_file.read_text().strip() or None, looked
    looked.append(common / "packed-refs")
    return _packed_ref(common, ref), looked


class HeadCache:
    """The commit of each repository, read again only when one of the files it was read from
    (or looked for) changed: a stat each instead of reading and parsing them all."""

    def __init__(self, size: int = GIT_DIR_CACHE_SIZE) -> None:
        self.size = size
        self._known: dict[Path, tuple[list[tuple[Path, FileKey]], Optional[str]]] = {}

    def commit(self, git_dir: Path) -> Optional[str]:
        known = self._known.get(git_dir)
        if known is not None and all(file_key(path) == key for path, key in known[0]):
            return known[1]
        commit, looked = read_commit(git_dir)
        keys = [(path, file_key(path)) for path in looked]
        # Read again after taking the keys: a change between the first read and the keys
        # would otherwise be remembered with the old commit for good.
        if read_commit(git_dir) == (commit, looked):
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[git_dir] = (keys, commit)
        return commit


HEADS = HeadCache()


def git_commit(
    start: Path, git_dirs: GitDirCache = GIT_DIRS, heads: HeadCache = HEADS
) -> Optional[str]:
    """The commit checked out in the repository holding ``start``; None outside one."""
    try:
        git_dir = git_dirs.find(start)
        if git_dir is None:
            return None
        try:
            return heads.commit(git_dir)
        except OSError:
            # The repository moved or went away since it was found: look again.
            git_dirs.forget(start)
            git_dir = git_dirs.find(start)
            return None if git_dir is None else heads.commit(git_dir)
    except OSError:
        return None


def loaded_modules(environ: Optional[dict[str, str]] = None) -> list[str]:
    """Environment modules (Lmod / Environment Modules) loaded in the server's environment,
    which jobs submitted from this machine inherit. Empty where modules are not used."""
    value = (environ if environ is not None else os.environ).get("LOADEDMODULES", "")
    return [name for name in value.split(":") if name]


def current_user() -> Optional[str]:
    try:
        return unix_user()
    except (KeyError, OSError):
        return None


def collect(
    *,
    notebook_path: Optional[str],
    cell_id: Optional[str],
    working_dir: Optional[Path],
    user: Optional[str],
    modules: bool,
) -> Provenance:
    """Provenance for a job; ``working_dir`` only when it is on this machine."""
    return Provenance(
        user=user,
        notebook_path=notebook_path,
        cell_id=cell_id,
        git_commit=git_commit(working_dir) if working_dir is not None else None,
        modules=loaded_modules() if modules else [],
    )
