"""Where a job came from: the notebook and cell (the frontends say), the git commit of its
working directory, the environment modules loaded, and the user who submitted it.

Everything here is read from files and the environment, never from a command: a submit must
stay fast, and a repository without git installed still has a commit to show.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..identity import unix_user
from .models import Provenance

MAX_DEPTH = 64  # folders walked up looking for .git


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


def _packed_ref(git_dir: Path, ref: str) -> Optional[str]:
    packed = git_dir / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(errors="replace").splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha
    return None


def git_commit(start: Path) -> Optional[str]:
    """The commit checked out in the repository holding ``start``; None outside one."""
    try:
        git_dir = find_git_dir(start)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(errors="replace").strip()
        if not head.startswith("ref:"):
            return head or None  # a detached HEAD holds the commit itself
        ref = head.split(":", 1)[1].strip()
        common = git_dir
        commondir = git_dir / "commondir"  # a worktree keeps its branches in the main .git
        if commondir.is_file():
            common = (git_dir / commondir.read_text().strip()).resolve()
        for base in (git_dir, common):
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text().strip() or None
        return _packed_ref(common, ref)
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
