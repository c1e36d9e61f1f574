"""JupyterHub's LocalProcessSpawner for the test machine (tests/test_hub.py).

Everything is LocalProcessSpawner's own (the Hub's environment, token, port, the server's
``JUPYTERHUB_*`` variables, the user's home as working folder) except where the switch to the
user happens. Its ``preexec_fn`` drops to the user before the interpreter starts, and this
machine's interpreter lives under /root, which other accounts cannot enter; at a real site
Python is installed where every user can run it. Here the process starts as root, imports what
the server needs (run_as_user.py beside this file), then drops to the user (groups, gid, uid,
umask 022) before the single-user server starts: the server itself runs only as the user.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner

RUN_AS_USER = Path(__file__).with_name("run_as_user.py")


class PreloadingLocalProcessSpawner(LocalProcessSpawner):  # type: ignore[misc]
    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        home = pwd.getpwnam(name).pw_dir

        def preexec() -> None:
            os.chdir(home)  # the uid switch comes later, in run_as_user.py

        return preexec

    async def start(self) -> Any:
        user = pwd.getpwnam(self.user.name)
        self.cmd = [
            sys.executable,
            str(RUN_AS_USER),
            str(user.pw_uid),
            str(user.pw_gid),
            "--singleuser",
            "--",
        ]
        return await super().start()
