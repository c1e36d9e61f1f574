"""Reading a cluster's ``options_schema`` (JSON Schema with one ``if``/``then`` branch per
partition) for the limits and choices the form checks and offers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional


def partition_rule(schema: Mapping[str, Any], field: str, partition: Optional[str]) -> Any:
    """What the schema's branch for ``partition`` says about ``field`` (its ``then``)."""
    for branch in schema.get("allOf", []):
        const = branch.get("if", {}).get("properties", {}).get("partition", {}).get("const")
        if const == partition:
            return branch.get("then", {}).get("properties", {}).get(field, {})
    return {}


def bounds(schema: Mapping[str, Any], field: str, partition: Optional[str]) -> tuple[Any, Any]:
    """(minimum, maximum) of a resource field from the options schema, for ``partition``."""
    prop = schema.get("properties", {}).get(field, {})
    options = [prop, *prop.get("anyOf", [])]
    minimum = next((o["minimum"] for o in options if "minimum" in o), None)
    maximum = next((o["maximum"] for o in options if "maximum" in o), None)
    rule = partition_rule(schema, field, partition)
    return rule.get("minimum", minimum), rule.get("maximum", maximum)


def allowed_names(schema: Mapping[str, Any], field: str, partition: Optional[str]) -> list[str]:
    """The names ``partition`` allows for ``field`` (its accounts, its QOS); empty: any."""
    rule = partition_rule(schema, field, partition)
    return [str(v) for v in rule.get("enum", []) if v is not None]
