"""Run `jupyter server` as another account: ``python run_as_user.py UID GID [MODE] -- args``.

MODE is none (``jupyter server``), ``--singleuser`` (JupyterHub's ``jupyterhub-singleuser``) or
``--script`` (``args[0]`` is a Python file, run like ``python FILE``: a kernel-side client).

Started by root. The test machine's interpreter may live where other accounts cannot read it
(e.g. under /root): everything the server needs is imported first, as root, then the process
drops to the account (groups, gid, uid), sets umask 022 and runs the server as that account.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path


def preload(mode: str) -> None:
    import jupyter_server.serverapp  # noqa: F401

    import parallelworks_lab

    for info in pkgutil.walk_packages(parallelworks_lab.__path__, "parallelworks_lab."):
        importlib.import_module(info.name)
    if mode == "--singleuser":
        # What the single-user extension imports, and no more: jupyterhub.singleuser.app
        # would patch Jupyter Server's handler classes for the older, non-extension mode.
        for name in ("jupyterhub.singleuser", "jupyterhub.singleuser.extension"):
            importlib.import_module(name)
    for name in (
        "encodings.idna",
        "encodings.ascii",
        "encodings.latin_1",
        "jupyter_server.base.handlers",
        "jupyter_server.services.contents.largefilemanager",
        "jupyter_server.services.kernels.kernelmanager",
        "jupyter_server.services.sessions.sessionmanager",
        "jupyter_server.gateway.managers",
        "jupyter_server.auth.identity",
        "jupyter_server.auth.authorizer",
        "nbclient",
        "nbformat",
        "sqlite3",
        "asyncio.unix_events",
        "concurrent.futures.thread",
        "yaml",
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def main() -> None:
    uid, gid = int(sys.argv[1]), int(sys.argv[2])
    split = sys.argv.index("--")
    mode = sys.argv[3] if split > 3 else ""
    args = sys.argv[split + 1 :]
    preload(mode)
    if mode == "--script":
        source = Path(args[0]).read_text()  # read as root: it may sit in root's temp folder
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(0o022)
    if mode == "--script":
        sys.argv = list(args)
        exec(compile(source, args[0], "exec"), {"__name__": "__main__"})
    elif mode == "--singleuser":
        from jupyterhub.singleuser import main as singleuser_main

        sys.argv = ["jupyterhub-singleuser", *args]
        singleuser_main()
    else:
        from jupyter_server.serverapp import main as server_main

        sys.argv = ["jupyter-server", *args]
        server_main()


if __name__ == "__main__":
    main()
