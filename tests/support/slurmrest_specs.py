"""slurmrestd's published OpenAPI specs (tests/data/slurmrest/) and a strict check of a body
against one of them: for the API versions the dev cluster's slurmrestd cannot serve."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

DATA = Path(__file__).resolve().parents[1] / "data" / "slurmrest"
SPEC_VERSIONS = ("v0.0.42", "v0.0.44")
# Versions without a spec here are checked against their neighbours' specs.
NEAREST_SPECS = {
    "v0.0.40": ("v0.0.42",),
    "v0.0.41": ("v0.0.42",),
    "v0.0.42": ("v0.0.42",),
    "v0.0.43": ("v0.0.42", "v0.0.44"),
    "v0.0.44": ("v0.0.44",),
}


@functools.cache
def spec(version: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{version}.json").read_text())
    return data


def _strict(node: Any) -> Any:
    """Unknown keys become errors: the specs allow any extra key, we want to know of typos."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def _strict_components(version: str) -> dict[str, Any]:
    components: dict[str, Any] = _strict(copy.deepcopy(spec(version)["components"]))
    return components


def check(version: str, schema: str, instance: Any, *, partial: bool = False) -> None:
    """Validate ``instance`` against ``components.schemas[<version>_<schema>]``, strictly
    (``partial``: an update, which need not have the keys a submission must have)."""
    root = {"$ref": f"#/components/schemas/{version}_{schema}"}
    root["components"] = _strict_components(version)  # type: ignore[assignment]
    errors = sorted(jsonschema.Draft7Validator(root).iter_errors(instance), key=str)
    if partial:
        errors = [e for e in errors if e.validator != "required" or e.absolute_path]
    assert not errors, f"{version} {schema}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )
