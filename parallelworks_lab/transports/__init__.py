"""How a backend reaches its scheduler's commands and files: this machine, or SSH."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .base import CommandResult, Transport, TransportError
from .local import LocalTransport, LocalTransportSettings
from .ssh import SSHTransport, SSHTransportSettings

TransportSettings = Annotated[
    Union[LocalTransportSettings, SSHTransportSettings], Field(discriminator="type")
]


def make_transport(settings: LocalTransportSettings | SSHTransportSettings) -> Transport:
    if isinstance(settings, SSHTransportSettings):
        return SSHTransport(settings)
    return LocalTransport(settings)


__all__ = [
    "CommandResult",
    "LocalTransport",
    "LocalTransportSettings",
    "SSHTransport",
    "SSHTransportSettings",
    "Transport",
    "TransportError",
    "TransportSettings",
    "make_transport",
]
