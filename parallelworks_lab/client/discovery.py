"""Finding the Jupyter server this process belongs to (explicit env vars, JupyterHub's
environment, or the ``jpserver-<pid>.json`` runtime file of its parent server)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

ENV_URL = "PWLAB_SERVER_URL"
ENV_TOKEN = "PWLAB_TOKEN"  # noqa: S105 - the name of a variable, not a secret


class ServerNotFound(RuntimeError):
    """Running under Jupyter, but the server to talk to could not be found."""


@dataclass(frozen=True)
class ServerInfo:
    """Where the Jupyter server is. The token never shows in reprs."""

    url: str  # the server's base URL, ending in "/"
    token: str = field(repr=False)
    source: str = "explicit"
    unix_socket: Optional[str] = None
    root_dir: Optional[str] = None

    @property
    def base_path(self) -> str:
        """The URL path of the server (``/`` or ``/user/name/``), for links in HTML."""
        return urlsplit(self.url).path or "/"


def _normalize_url(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/") else url + "/"


# Addresses a server listens on, not ones to connect to (JupyterHub's bind URLs use "*").
_WILDCARD_HOST = re.compile(r"^(\w+://)(\*|0\.0\.0\.0|\[::\]|::|)(?=[:/]|$)")


def _connectable(url: str) -> str:
    """A URL of a server on this machine, with a listen-on-all address made connectable."""
    return _WILDCARD_HOST.sub(r"\g<1>127.0.0.1", _normalize_url(url), count=1)


def _has_port(url: str) -> bool:
    try:
        return bool(urlsplit(_normalize_url(url)).port)
    except ValueError:  # a port that is not a number
        return False


def _ancestor_pids() -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process().parents()]
    except Exception:
        return []


def _running_servers() -> tuple[str, list[dict[str, Any]]]:
    from jupyter_core.paths import jupyter_runtime_dir
    from jupyter_server.serverapp import list_running_servers

    runtime_dir = jupyter_runtime_dir()
    return runtime_dir, list(list_running_servers(runtime_dir))


def _from_runtime_info(info: Mapping[str, Any], token: str, source: str) -> ServerInfo:
    sock = info.get("sock") or None
    if sock:
        url = "http://localhost" + str(info.get("base_url") or "/")
    else:
        url = _connectable(str(info["url"]))
    return ServerInfo(
        url=url,
        token=token,
        source=source,
        unix_socket=str(sock) if sock else None,
        root_dir=info.get("root_dir"),
    )


def find_server(environ: Optional[Mapping[str, str]] = None) -> Optional[ServerInfo]:
    """The Jupyter server this process belongs to.

    Tried in order: ``PWLAB_SERVER_URL`` (and ``PWLAB_TOKEN``); JupyterHub's environment
    (``JUPYTERHUB_SERVICE_URL`` + ``JUPYTERHUB_API_TOKEN``); the runtime file
    (``jpserver-<pid>.json``) of the server whose pid is ``JPY_PARENT_PID`` or one of this
    process's ancestors (a script in a JupyterLab terminal).

    Returns None when this process is not under Jupyter at all (no ``JPY_PARENT_PID``, no
    JupyterHub variables, no server among its ancestors): the caller may then run the service
    in-process. Raises :class:`ServerNotFound`, saying what was tried, when it is under Jupyter
    but the server cannot be found.
    """
    env = os.environ if environ is None else environ
    explicit_token = env.get(ENV_TOKEN)
    tried: list[str] = []

    if env.get(ENV_URL):
        return ServerInfo(_normalize_url(env[ENV_URL]), explicit_token or "", f"${ENV_URL}")
    tried.append(f"${ENV_URL} is not set")

    hub_token = env.get("JUPYTERHUB_API_TOKEN", "")
    hub_url = env.get("JUPYTERHUB_SERVICE_URL", "")
    hub_markers = [k for k in env if k.startswith("JUPYTERHUB_")]
    if hub_url and (hub_token or explicit_token) and _has_port(hub_url):
        # The user's own single-user server, reached directly (not through the Hub's proxy),
        # with the token the Hub gave that server: it can reach no other user's server.
        return ServerInfo(
            _connectable(hub_url), explicit_token or hub_token, "JupyterHub environment"
        )
    if hub_url and not _has_port(hub_url):
        # batchspawner and friends pick the port on the compute node after the Hub wrote this
        # variable: the runtime file of the kernel's parent server has the real one.
        tried.append(f"JUPYTERHUB_SERVICE_URL ({hub_url}) names no port yet")
    elif hub_markers:
        missing = [k for k in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN") if not env.get(k)]
        tried.append("JupyterHub environment: " + " and ".join(missing) + " not set")
    else:
        tried.append("no JupyterHub environment")

    parent = env.get("JPY_PARENT_PID", "")
    candidates: list[int] = []
    if parent.isdigit():
        candidates.append(int(parent))
    ancestors = _ancestor_pids()
    candidates += [pid for pid in ancestors if pid not in candidates]
    try:
        runtime_dir, servers = _running_servers()
    except Exception as exc:  # jupyter_server missing or the runtime dir unreadable
        runtime_dir, servers = "?", []
        tried.append(f"listing running servers failed: {exc}")
    by_pid = {int(s["pid"]): s for s in servers if str(s.get("pid", "")).isdigit()}
    for pid in candidates:
        if pid in by_pid:
            info = by_pid[pid]
            token = explicit_token or str(info.get("token") or "") or hub_token
            how = "JPY_PARENT_PID" if str(pid) == parent else "an ancestor process"
            return _from_runtime_info(
                info, token, f"runtime file of server pid {pid} ({how}) in {runtime_dir}"
            )
    running = ", ".join(str(p) for p in sorted(by_pid)) or "none"
    looked_for = f"JPY_PARENT_PID={parent}" if parent else "no JPY_PARENT_PID"
    tried.append(
        f"runtime files (jpserver-<pid>.json) in {runtime_dir}: {looked_for}, "
        f"{len(ancestors)} ancestor process(es); servers running there: {running}"
    )

    if parent or hub_markers:
        raise ServerNotFound(
            "parallelworks-lab: cannot find the Jupyter server of this kernel. Tried: "
            + "; ".join(tried)
            + f". Set ${ENV_URL} (and ${ENV_TOKEN}) to the server's URL, or use "
            "Client(url=..., token=...) or Client.in_process()."
        )
    return None
