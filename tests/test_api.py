"""The REST contract: auth on every route, validation errors, clusters, events, OpenAPI."""

from __future__ import annotations

import asyncio
import json
import re

import jsonschema
import pytest
from tornado.httpclient import HTTPClientError

from .support.api import MAX_TIME, SLOTS

BASE = "/parallelworks-lab"


def example_path(pattern: str) -> str:
    """A concrete URL for a route pattern."""
    fill = {"cluster_id": "local", "job_id": "0" * 12, "action": "hold", "name": "mine"}
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: fill[m.group(1)], pattern)
    return path.replace("/?", "")


def our_routes(serverapp) -> list[str]:
    """Every URL pattern the running server has under our base path (not a hand-kept list)."""
    patterns = []
    for rule in serverapp.web_app.default_router.rules:
        for sub in getattr(rule.target, "rules", []):
            regex = sub.matcher.regex.pattern if hasattr(sub.matcher, "regex") else ""
            if BASE in regex:
                patterns.append(regex)
    return patterns


async def test_every_route_refuses_unauthenticated_requests(jp_serverapp, jp_fetch):
    patterns = our_routes(jp_serverapp)
    assert len(patterns) >= 7, patterns
    for pattern in patterns:
        path = example_path(BASE + pattern.rstrip("$").split(BASE, 1)[1])
        for method in ("GET", "POST", "DELETE"):
            kwargs = {"method": method, "raise_error": False, "headers": {"Authorization": ""}}
            if method == "POST":
                kwargs["body"] = "{}"
            if method == "DELETE":
                kwargs["allow_nonstandard_methods"] = True
            response = await jp_fetch(path.lstrip("/"), **kwargs)
            # 403 (or 405 where the method does not exist): never an answer with data.
            assert response.code in (403, 405), (method, path, response.code)
            if method == "GET" and not path.endswith(("hold", "release", "suggestions")):
                assert response.code == 403, (method, path)


async def test_clusters_list_and_detail(api):
    body = await api.get("clusters")
    assert body["clusters"] == [
        {
            "id": "local",
            "name": "local",
            "kind": "local",
            "status": "ok",
            "status_message": None,
            "description": "",
            "outputs_readable_by": "only you",
            "output_umask": "077",
            "python": "python3",
        }
    ]
    detail = await api.get("clusters/local")
    [partition] = detail["partitions"]
    assert partition["name"] == "local" and partition["default"] is True
    assert partition["cpus_per_node"] == SLOTS
    assert partition["max_time_minutes"] == MAX_TIME
    assert partition["memory_mb_per_node"] > 100
    assert partition["gpus_per_node"] == 0
    schema = detail["options_schema"]
    assert schema["properties"]["partition"]["enum"] == ["local"]
    assert "array" not in schema["properties"]
    # The schema enforces the same limits as the server.
    jsonschema.validate({"cpus_per_task": SLOTS}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cpus_per_task": SLOTS + 1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"time_limit_minutes": MAX_TIME + 1}, schema)
    status, body = await api.call("GET", "clusters/nope")
    assert status == 404 and "nope" in body["message"]


BAD_SUBMITS = [
    ({"cluster": "local"}, "body", "exactly one of 'script' or 'command'"),
    ({"cluster": "local", "command": "x", "script": "y"}, "body", "exactly one"),
    ({"cluster": "local", "command": "  "}, "command", "must not be empty"),
    ({"cluster": "mars", "command": "x"}, "cluster", "unknown cluster 'mars'"),
    ({"cluster": "local", "command": "x", "resources": {"nodes": 0}}, "resources.nodes", ""),
    (
        {"cluster": "local", "command": "x", "resources": {"nodes": 2}},
        "resources.nodes",
        "limit of 1 nodes",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"cpus_per_task": SLOTS + 1}},
        "resources.cpus_per_task",
        f"limit of {SLOTS} CPUs",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"ntasks": SLOTS + 1}},
        "resources.ntasks",
        f"exceeds the {SLOTS} CPUs",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"gpus": 1}},
        "resources.gpus",
        "has no GPUs",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"memory_mb": 1 << 30}},
        "resources.memory_mb",
        "MiB per node",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"time_limit_minutes": MAX_TIME + 1}},
        "resources.time_limit_minutes",
        f"limit of {MAX_TIME} minutes",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"partition": "gpu"}},
        "resources.partition",
        "unknown partition 'gpu'; available: local",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"array": "1-3"}},
        "resources.array",
        "not supported",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"array": "1-3; rm -rf"}},
        "resources.array",
        "pattern",
    ),
    (
        {"cluster": "local", "command": "x", "resources": {"bogus": 1}},
        "resources.bogus",
        "Extra inputs",
    ),
    ({"cluster": "local", "command": "x", "name": "a\nb"}, "name", "one line"),
    ({"cluster": "local", "command": "x", "name": "--wrap=evil"}, "name", "start with '-'"),
    (
        {"cluster": "local", "command": "x", "working_dir": "/does/not/exist"},
        "working_dir",
        "not an existing directory",
    ),
    ({"cluster": "local", "command": "x", "env": {"1BAD": "v"}}, "env", "not a valid"),
    ({"cluster": "local", "command": "x", "after": ["nothex"]}, "after", "not a job id"),
    ({"cluster": "local", "command": "x", "after": ["0123456789ab"]}, "after", "unknown job"),
    ({"cluster": "local", "command": "x", "shell": "zsh"}, "shell", "Extra inputs"),
]


@pytest.mark.parametrize(("body", "field", "text"), BAD_SUBMITS)
async def test_bad_submit_is_400_naming_the_field(api, body, field, text):
    status, answer = await api.call("POST", "jobs", body)
    assert status == 400, answer
    fields = [e["field"] for e in answer["errors"]]
    assert field in fields, answer
    assert text in json.dumps(answer), answer
    # Nothing was recorded for a refused submit.
    assert (await api.get("jobs"))["jobs"] == []


async def test_malformed_json_and_query_parameters(api):
    status, answer = await api.call("POST", "jobs", None)
    assert status == 400 and answer["errors"][0]["field"] == "body"
    for params, field in [
        ({"limit": "x"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"state": "SLEEPING"}, "state"),
        ({"cursor": "abc"}, "cursor"),
        ({"cluster": "mars"}, "cluster"),
    ]:
        status, answer = await api.call("GET", "jobs", params=params)
        assert status == 400 and answer["errors"][0]["field"] == field, (params, answer)
    job = await api.submit(command="true")
    for params, field in [({"stream": "stdin"}, "stream"), ({"offset": "-1"}, "offset")]:
        status, answer = await api.call("GET", f"jobs/{job['id']}/logs", params=params)
        assert status == 400 and answer["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("DELETE", ""), ("POST", "/hold"), ("POST", "/release"), ("GET", "/logs")],
)
async def test_unknown_job_is_404(api, method, suffix):
    for job_id in ("0123456789ab", "not-an-id"):
        status, body = await api.call(method, f"jobs/{job_id}{suffix}")
        assert status == 404, (method, job_id, status, body)
        assert job_id in body["message"]


async def test_event_stream_delivers_state_changes(api, jp_ws_fetch):
    ws = await jp_ws_fetch("api", "events", "subscribe")
    try:
        job = await api.submit(command="sleep 0.5; echo done")
        seen: list[str] = []
        while "COMPLETED" not in seen:
            frame = await asyncio.wait_for(ws.read_message(), timeout=20)
            assert frame is not None, "event socket closed"
            event = json.loads(frame)
            if event.get("schema_id") != "urn:parallelworks-lab:job-state":
                continue
            if event["id"] == job["id"]:
                seen.append(event["state"])
                assert event["cluster"] == "local" and event["native_id"] == job["native_id"]
        assert seen[-1] == "COMPLETED"
        assert set(seen) & {"QUEUED", "RUNNING"}
    finally:
        ws.close()


async def test_event_socket_needs_credentials(jp_ws_fetch):
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("api", "events", "subscribe", headers={"Authorization": ""})
    assert err.value.code in (302, 403)


async def test_openapi_describes_every_route(api, jp_serverapp):
    spec = await api.get("openapi.json")
    assert spec["openapi"].startswith("3.")
    documented = set(spec["paths"])
    for pattern in our_routes(jp_serverapp):
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.rstrip("$"))
        path = path.split(BASE, 1)[1].replace("/?", "") or "/"
        path = path.replace("/{action}", "/hold")
        assert path in documented, (path, documented)
    assert "release" in json.dumps(spec["paths"])
    assert {"Job", "JobSubmit", "ResourceRequest", "ErrorBody"} <= set(
        spec["components"]["schemas"]
    )


async def test_submission_is_kept_for_resubmit(api):
    body = {
        "cluster": "local",
        "script": "#!/bin/bash\necho $A\n",
        "name": "again",
        "resources": {"cpus_per_task": 2, "time_limit_minutes": 5},
        "env": {"A": "1"},
    }
    job = await api.submit(**body)
    kept = await api.get(f"jobs/{job['id']}/submission")
    assert kept["script"] == body["script"] and kept["command"] is None
    assert kept["env"] == {"A": "1"} and kept["name"] == "again"
    assert kept["resources"]["cpus_per_task"] == 2
    assert kept["resources"]["time_limit_minutes"] == 5
    # It can be sent back as it is.
    again = await api.submit(**kept)
    assert again["id"] != job["id"]
    status, answer = await api.call("GET", "jobs/0123456789ab/submission")
    assert status == 404, answer
