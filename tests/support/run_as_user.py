"""Run `jupyter server` as another account: ``python run_as_user.py UID GID -- server args``.

Started by root. The test machine's interpreter may live where other accounts cannot read it
(e.g. under /root): everything the server needs is imported first, as root, then the process
drops to the account (groups, gid, uid), sets umask 022 and runs the server as that account.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys


def preload() -> None:
    import jupyter_server.serverapp  # noqa: F401

    import parallelworks_lab

    for info in pkgutil.walk_packages(parallelworks_lab.__path__, "parallelworks_lab."):
        importlib.import_module(info.name)
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
    args = sys.argv[sys.argv.index("--") + 1 :]
    preload()
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(0o022)
    from jupyter_server.serverapp import main as server_main

    sys.argv = ["jupyter-server", *args]
    server_main()


if __name__ == "__main__":
    main()
