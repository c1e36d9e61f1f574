"""Templates: a named set of resources (and optionally a script) to start a submission from.

Site templates are read-only files an administrator writes once into ``templates_dir`` (JSON or
YAML, one template per file); a user's own are JSON files in their data folder, private to them.
Both are validated like a submission, against the cluster's options, before they are offered.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import Field, ValidationError, field_validator

from ..models import CLUSTER_ID_PATTERN, MAX_SCRIPT_BYTES, ResourceRequest, StrictModel
from ..privacy import private_dir, replace_private

TEMPLATE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}$"
SITE_SUFFIXES = (".json", ".yaml", ".yml")


class TemplateIn(StrictModel):
    """The body of ``POST /templates``, and the content of a template file."""

    name: str = Field(pattern=TEMPLATE_NAME_PATTERN, description="Shown in the template list.")
    description: str = Field(default="", max_length=1000)
    cluster: Optional[str] = Field(default=None, pattern=CLUSTER_ID_PATTERN)
    resources: ResourceRequest = Field(default_factory=ResourceRequest)
    script: Optional[str] = Field(default=None, max_length=MAX_SCRIPT_BYTES)
    command: Optional[str] = Field(default=None, max_length=MAX_SCRIPT_BYTES)

    @field_validator("script", "command")
    @classmethod
    def _no_nul(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Template(StrictModel):
    name: str
    description: str = ""
    cluster: Optional[str] = None
    resources: dict[str, Any] = Field(
        default_factory=dict, description="Only the fields the template sets."
    )
    script: Optional[str] = None
    command: Optional[str] = None
    source: Literal["site", "user"]
    read_only: bool

    @classmethod
    def of(cls, template: TemplateIn, source: Literal["site", "user"]) -> Template:
        return cls(
            name=template.name,
            description=template.description,
            cluster=template.cluster,
            resources=template.resources.model_dump(exclude_unset=True),
            script=template.script,
            command=template.command,
            source=source,
            read_only=source == "site",
        )


class TemplateList(StrictModel):
    templates: list[Template]


def file_stem(name: str) -> str:
    """A file name for a template name (names are already restricted to safe characters)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


class TemplateStore:
    def __init__(
        self, site_dir: Optional[Path], user_dir: Path, log: Optional[logging.Logger] = None
    ) -> None:
        self.site_dir = site_dir
        self.user_dir = user_dir
        self.log = log or logging.getLogger("parallelworks_lab")

    def _read(self, path: Path) -> Optional[TemplateIn]:
        try:
            text = path.read_text()
            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
            return TemplateIn.model_validate(data)
        except (OSError, ValueError, yaml.YAMLError, ValidationError) as exc:
            self.log.warning("template %s is not usable, skipped: %s", path, exc)
            return None

    def _folder(self, folder: Optional[Path], suffixes: tuple[str, ...]) -> list[TemplateIn]:
        if folder is None or not folder.is_dir():
            return []
        found = [self._read(p) for p in sorted(folder.iterdir()) if p.suffix in suffixes]
        return [t for t in found if t is not None]

    def site(self) -> list[TemplateIn]:
        return self._folder(self.site_dir, SITE_SUFFIXES)

    def user(self) -> list[TemplateIn]:
        return self._folder(self.user_dir, (".json",))

    def list(self) -> list[Template]:
        site = [Template.of(t, "site") for t in self.site()]
        taken = {t.name for t in site}
        user = [Template.of(t, "user") for t in self.user() if t.name not in taken]
        return sorted(site + user, key=lambda t: (t.source != "site", t.name.lower()))

    def get(self, name: str) -> Optional[Template]:
        return next((t for t in self.list() if t.name == name), None)

    def save(self, template: TemplateIn) -> Template:
        """Write a user template (replacing one of the same name), readable by the user only."""
        private_dir(self.user_dir)
        path = self.user_dir / f"{file_stem(template.name)}.json"
        replace_private(path, template.model_dump_json(exclude_unset=True, indent=2))
        return Template.of(template, "user")

    def delete(self, name: str) -> bool:
        path = self.user_dir / f"{file_stem(name)}.json"
        existing = self._read(path) if path.is_file() else None
        if existing is None or existing.name != name:
            return False
        path.unlink()
        return True
