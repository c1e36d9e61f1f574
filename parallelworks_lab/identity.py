"""Who this server acts for: the Unix account it runs as.

``getpass.getuser()`` believes ``$USER`` / ``$LOGNAME`` first. Under JupyterHub those are set by
the spawner (sometimes to the Hub's name for the person, which need not be their Unix name), so a
server could ask the scheduler about someone else's jobs (``qstat -u``, ``sacctmgr ... user=``).
The account comes from the process's own uid instead; the environment is only a fallback where
the uid has no passwd entry (a container started with an arbitrary uid).
"""

from __future__ import annotations

import getpass
import os
import pwd


def unix_user() -> str:
    """The login name of the account this process runs as."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return getpass.getuser()
