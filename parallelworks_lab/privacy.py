"""Private by default: what the extension creates for a user is readable by that user only.

Folders are created 0700 and files 0600 whatever the process umask and the home directory's
mode (``useradd`` on Debian makes homes 0755: a 0644 file in one is readable by every account).
Everything the extension writes goes through these helpers; :func:`tighten` makes an existing
install private at start-up (never loosens, never deletes).

Environment values whose names look secret are handed to the job but not kept: see
:func:`is_secret_name` and :func:`redact_env`.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: What every group/other permission bit is.
SHARED_BITS = 0o077
#: The umask scheduler jobs are submitted with unless a cluster sets ``output_umask``.
DEFAULT_OUTPUT_UMASK = "077"
OCTAL_UMASK = re.compile(r"^0?[0-7]{3}$")

#: Names of environment variables whose values are secrets (case-insensitive, anywhere in the
#: name): ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``, ``api_key``, ...
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def secret_names(env: dict[str, str]) -> list[str]:
    return [name for name in env if is_secret_name(name)]


def redact_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the value of every secret-named variable blanked (names kept)."""
    return {name: "" if is_secret_name(name) else value for name, value in env.items()}


def parse_umask(value: str) -> int:
    """An octal umask string ("077", "007", "0022") as an int; ValueError otherwise."""
    if not isinstance(value, str) or not OCTAL_UMASK.match(value):
        raise ValueError("must be an octal umask of three digits, e.g. '077' or '007'")
    return int(value, 8)


def readers(umask: int) -> str:
    """Who can read files created under ``umask``, in words."""
    if umask & 0o044 == 0o044:
        return "only you"
    if umask & 0o004:
        return "you and your group"
    return "every account on the machine"


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and missing parents) as a 0700 folder; an existing one is tightened if
    it is ours (unless ``tighten_existing`` is false: a folder the user chose)."""
    if not path.is_dir():
        missing = [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        # Parents we had to create are ours too (mkdir gives them the process umask's mode).
        for created in missing:
            _tighten_one(created)
    elif tighten_existing:
        _tighten_one(path)
    return path


def open_private(path: Path | str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` of a file that is 0600 from its first byte (an existing one is tightened)."""
    fd = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        mode = os.fstat(fd).st_mode
        if mode & SHARED_BITS and os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(mode) & ~SHARED_BITS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def touch_private(path: Path | str) -> None:
    """Create ``path`` empty and private if it does not exist (an existing one is kept)."""
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


def write_private(path: Path | str, data: str | bytes) -> None:
    """Write a private file in place."""
    raw = data.encode() if isinstance(data, str) else data
    with os.fdopen(open_private(path), "wb") as handle:
        handle.write(raw)


def replace_private(path: Path, data: str | bytes, suffix: str = ".tmp") -> None:
    """Write a private file atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_name(path.name + suffix)
    write_private(tmp, data)
    os.replace(tmp, path)


def write_json_private(path: Path, data: Any) -> None:
    replace_private(path, json.dumps(data))


def _tighten_one(path: Path) -> Optional[str]:
    """Remove group/other bits of ``path`` if it is ours and has any; what changed, else None."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return None  # a link's target, or another account's file, is not ours to change
    mode = stat.S_IMODE(st.st_mode)
    if not mode & SHARED_BITS:
        return None
    new = mode & ~SHARED_BITS
    try:
        os.chmod(path, new)
    except OSError:
        return None
    return f"{path} ({mode:04o} -> {new:04o})"


def tighten(roots: Iterable[Path], *, recursive: Iterable[Path] = ()) -> list[str]:
    """Make existing files and folders private: each of ``roots`` itself, and everything under
    each of ``recursive``. Only group/other bits are removed; nothing is loosened or deleted.
    Returns what was changed ("path (old -> new)")."""
    changed: list[str] = []
    for root in roots:
        if (what := _tighten_one(root)) is not None:
            changed.append(what)
    for top in recursive:
        if not top.is_dir() or top.is_symlink():
            continue
        if (what := _tighten_one(top)) is not None:
            changed.append(what)
        for dirpath, dirnames, filenames in os.walk(top):
            base = Path(dirpath)
            for name in (*dirnames, *filenames):
                if (what := _tighten_one(base / name)) is not None:
                    changed.append(what)
    return changed


def describe_changes(changed: list[str], limit: int = 5) -> str:
    shown = ", ".join(changed[:limit])
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return f"{shown}{more}"
