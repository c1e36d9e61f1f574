"""The OpenAPI description of the REST API, built from the same pydantic models it serves."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from . import __version__
from .guidance.models import Suggestion
from .guidance.templates import Template, TemplateIn, TemplateList
from .models import (
    ClusterDetail,
    ClusterList,
    ErrorBody,
    Job,
    JobList,
    JobSubmit,
    LogChunk,
)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


ERRORS = {
    "400": _json("ErrorBody", "Invalid input; `errors` names each field"),
    "403": {"description": "Not authenticated"},
}
NOT_FOUND = {"404": _json("ErrorBody", "Unknown id")}
CONFLICT = {"409": _json("ErrorBody", "The job is in the wrong state for this action")}
UNREACHABLE = {"503": _json("ErrorBody", "The cluster's scheduler could not be reached")}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
TEMPLATE_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
CLUSTER_ID = {"name": "cluster_id", "in": "path", "required": True, "schema": {"type": "string"}}


@lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        ClusterList,
        ClusterDetail,
        Job,
        JobList,
        LogChunk,
        ErrorBody,
        Suggestion,
        Template,
        TemplateList,
    ]
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "serialization") for m in models]
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (JobSubmit, "validation"),
        (TemplateIn, "validation"),
    ]
    _, schema = models_json_schema([*modes, *inputs], ref_template=REF)
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs


def openapi_spec(base_url: str = "/") -> dict[str, Any]:
    base = base_url.rstrip("/") + "/parallelworks-lab"
    job_action = {
        "parameters": [JOB_ID],
        "responses": {
            "200": _json("Job", "The job after the action"),
            **ERRORS,
            **NOT_FOUND,
            **CONFLICT,
            **UNREACHABLE,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "parallelworks-lab",
            "version": __version__,
            "description": "Submit and watch HPC jobs from JupyterLab. Job changes are also "
            "pushed on Jupyter Server's event bus (schema urn:parallelworks-lab:job-state).",
        },
        "servers": [{"url": base}],
        "paths": {
            "/clusters": {
                "get": {
                    "summary": "List configured clusters and their status",
                    "responses": {"200": _json("ClusterList", "Clusters"), **ERRORS},
                }
            },
            "/clusters/{cluster_id}": {
                "get": {
                    "summary": "A cluster's partitions and the JSON Schema of its resource form",
                    "parameters": [CLUSTER_ID],
                    "responses": {
                        "200": _json("ClusterDetail", "Cluster detail"),
                        **ERRORS,
                        **NOT_FOUND,
                        **UNREACHABLE,
                    },
                }
            },
            "/clusters/{cluster_id}/start": {
                "post": {
                    "summary": "Switch on a cluster that is off (Parallel Works ACTIVATE); "
                    "progress follows as cluster status events until it is ok",
                    "parameters": [CLUSTER_ID],
                    "responses": {
                        "202": _json("ClusterSummary", "Start requested; status `starting`"),
                        **ERRORS,
                        **NOT_FOUND,
                        "409": _json("ErrorBody", "The cluster cannot be started (not off)"),
                        **UNREACHABLE,
                    },
                }
            },
            "/jobs": {
                "get": {
                    "summary": "List jobs, newest first",
                    "parameters": [
                        {"name": "cluster", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "state",
                            "in": "query",
                            "description": "One or more states, comma separated",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": _json("JobList", "A page of jobs"), **ERRORS},
                },
                "post": {
                    "summary": "Submit a job",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("JobSubmit")}},
                    },
                    "responses": {
                        "201": _json("Job", "The submitted job"),
                        **ERRORS,
                        **UNREACHABLE,
                    },
                },
            },
            "/jobs/{job_id}": {
                "get": {
                    "summary": "One job",
                    "parameters": [JOB_ID],
                    "responses": {"200": _json("Job", "The job"), **ERRORS, **NOT_FOUND},
                },
                "delete": {"summary": "Cancel a job", **job_action},
            },
            "/jobs/{job_id}/submission": {
                "get": {
                    "summary": "What was submitted (script or command, resources, env, after)",
                    "parameters": [JOB_ID],
                    "responses": {
                        "200": _json(
                            "JobSubmit",
                            "The submit request; secret-named env values are blank and "
                            "named in redacted_env",
                        ),
                        **ERRORS,
                        **NOT_FOUND,
                    },
                }
            },
            "/jobs/{job_id}/hold": {"post": {"summary": "Hold a queued job", **job_action}},
            "/jobs/{job_id}/release": {"post": {"summary": "Release a held job", **job_action}},
            "/jobs/{job_id}/logs": {
                "get": {
                    "summary": "Read a job's output incrementally",
                    "parameters": [
                        JOB_ID,
                        {
                            "name": "stream",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["stdout", "stderr"]},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "description": "Byte offset to read from (the `offset` of the "
                            "previous answer)",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                    "responses": {
                        "200": _json("LogChunk", "Output from offset"),
                        **ERRORS,
                        **NOT_FOUND,
                    },
                }
            },
            "/suggestions": {
                "post": {
                    "summary": "What to ask for: what earlier runs of the same script (or job "
                    "name) on the cluster really used, with headroom",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("JobSubmit")}},
                    },
                    "responses": {"200": _json("Suggestion", "The suggestion"), **ERRORS},
                }
            },
            "/templates": {
                "get": {
                    "summary": "Site (read-only) and your own templates",
                    "responses": {"200": _json("TemplateList", "Templates"), **ERRORS},
                },
                "post": {
                    "summary": "Save one of your templates (replaces one of the same name)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("TemplateIn")}},
                    },
                    "responses": {
                        "201": _json("Template", "The saved template"),
                        **ERRORS,
                        "409": _json("ErrorBody", "A site template has that name"),
                    },
                },
            },
            "/templates/{name}": {
                "delete": {
                    "summary": "Delete one of your templates",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "204": {"description": "Deleted"},
                        **ERRORS,
                        **NOT_FOUND,
                        "409": _json("ErrorBody", "A site template cannot be deleted"),
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OK"}}}
            },
        },
        "components": {"schemas": _components()},
    }
