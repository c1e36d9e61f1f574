"""Jupyter Server configuration for the Galata tests of parallelworks-lab.

Galata's helper opens the server for the tests (no token, no XSRF) and gives it a temporary
root directory and workspaces directory; the job database and the local cluster's job folders
go to another temporary directory. All three are removed when the server exits.
"""

import atexit
import os
import shutil
from pathlib import Path
from tempfile import mkdtemp

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 (c is the config object Jupyter passes)

if not os.environ.get("JUPYTERLAB_GALATA_ROOT_DIR"):
    atexit.register(shutil.rmtree, c.ServerApp.root_dir, ignore_errors=True)  # noqa: F821
atexit.register(shutil.rmtree, c.LabApp.workspaces_dir, ignore_errors=True)  # noqa: F821

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821

_state = Path(mkdtemp(prefix="pwlab-ui-state-"))
atexit.register(shutil.rmtree, _state, ignore_errors=True)

c.ParallelWorksLabApp.db_path = str(_state / "jobs.sqlite")  # noqa: F821
c.ParallelWorksLabApp.poll_interval = 0.5  # noqa: F821
c.ParallelWorksLabApp.clusters = [  # noqa: F821
    {
        "id": "local",
        "kind": "local",
        "description": "This machine (UI tests)",
        "slots": 2,
        "max_time_minutes": 60,
        "kill_grace_seconds": 1,
    }
]
