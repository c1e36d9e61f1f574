"""How this server reaches an ACTIVATE cluster's login node over SSH: the SSH part of the
configuration, the address and user read from the platform's connection string, and the host
keys the platform reports, written to a private known_hosts file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from ..backends.base import BackendContext
from ..privacy import private_dir, replace_private
from ..transports.ssh import JumpHostSettings, SSHTransportSettings
from .platform import PlatformCluster


class ActivateSSHSettings(BaseModel):
    """How this server reaches the clusters' login nodes (the address comes from the platform)."""

    model_config = ConfigDict(extra="forbid")

    key_file: Optional[str] = Field(
        default=None, description="Private key; without one the SSH agent / default keys are used."
    )
    known_hosts: Optional[str] = Field(
        default=None,
        description="known_hosts file; default: the host keys the platform reports for the "
        "cluster, else ~/.ssh/known_hosts.",
    )
    check_host_key: bool = True
    username: Optional[str] = Field(default=None, description="Overrides the platform's user.")
    host: Optional[str] = Field(default=None, description="Overrides the platform's address.")
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    jump_host: Optional[JumpHostSettings] = None
    connect_timeout: float = Field(default=15.0, gt=0)
    keepalive_interval: float = Field(default=30.0, gt=0)


class NoSSH(Exception):
    """Why this server cannot SSH to a cluster."""


def parse_connection(text: Optional[str]) -> tuple[Optional[str], Optional[str], Optional[int]]:
    """(user, host, port) from ``user@host``, ``ssh -p 2222 user@host`` or ``ssh://user@host:22``."""
    if not text:
        return None, None, None
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    user = host = None
    port: Optional[int] = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "ssh":
            pass
        elif word == "-p" and i + 1 < len(words):
            port = int(words[i + 1]) if words[i + 1].isdigit() else None
            i += 1
        elif word.startswith("-"):
            if word in ("-J", "-i", "-o", "-l", "-F") and i + 1 < len(words):
                if word == "-l":
                    user = words[i + 1]
                i += 1
        else:
            target = word.removeprefix("ssh://")
            if "@" in target:
                user, target = target.rsplit("@", 1)
            if target.count(":") == 1:
                target, _, maybe_port = target.partition(":")
                if maybe_port.isdigit():
                    port = int(maybe_port)
            host = target or host
        i += 1
    return user, host, port


def login_ssh_settings(
    ssh: ActivateSSHSettings, platform: PlatformCluster, context: BackendContext
) -> SSHTransportSettings:
    """The login node's SSH settings, or NoSSH with the reason."""
    if platform.scheduler_type and platform.scheduler_type.lower() != "slurm":
        raise NoSSH(
            f"its scheduler is {platform.scheduler_type}; jobs are submitted from here to "
            "Slurm clusters only"
        )
    user, host, port = parse_connection(platform.connection_string)
    host = ssh.host or host or platform.ip_address or None
    if platform.should_platform_proxy and not (ssh.host or ssh.jump_host):
        raise NoSSH(
            "the platform routes SSH to it through its own proxy (shouldPlatformProxy); "
            "set ssh.host or ssh.jump_host to a route this server can use"
        )
    if not host:
        raise NoSSH("the platform gives no address for its login node")
    username = ssh.username or user or platform.user
    port = ssh.port or port or 22
    known_hosts = ssh.known_hosts
    if known_hosts is None and platform.ssh_host_keys and ssh.check_host_key:
        known_hosts = str(write_known_hosts(context, host, port, platform.ssh_host_keys))
    return SSHTransportSettings(
        type="ssh",
        host=host,
        port=port,
        username=username,
        key_file=ssh.key_file,
        known_hosts=known_hosts,
        check_host_key=ssh.check_host_key,
        jump_host=ssh.jump_host,
        keepalive_interval=ssh.keepalive_interval,
        connect_timeout=ssh.connect_timeout,
    )


def write_known_hosts(context: BackendContext, host: str, port: int, keys: list[str]) -> Path:
    """The host keys the platform's agent reported (over our authenticated HTTPS)."""
    pattern = host if port == 22 else f"[{host}]:{port}"
    lines = [f"{pattern} {key.strip()}" for key in keys if key.strip().count(" ") >= 1]
    path = context.state_dir / "known_hosts"
    private_dir(path.parent)
    replace_private(path, "".join(line + "\n" for line in lines))
    return path
