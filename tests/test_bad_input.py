"""A corpus of hostile and malformed requests: each is a 4xx naming what is wrong, never a 5xx,
and a refused submit leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

LONE = "\ud800"  # a lone UTF-16 surrogate: valid JSON ("\ud800"), not encodable as UTF-8


def submit(**fields: Any) -> dict[str, Any]:
    return {"cluster": "local", "command": "echo hi", **fields}


TEXT_FIELDS = [
    (submit(env={"A": f"x{LONE}"}), "env", "value of 'A'"),
    (submit(env={f"A{LONE}": "x"}), "env", "not valid Unicode"),
    ({"cluster": "local", "script": f"echo {LONE}"}, "script", "not valid Unicode"),
    (submit(command=f"echo {LONE}"), "command", "not valid Unicode"),
    (submit(command="echo \udcff"), "command", "not valid Unicode"),
    (submit(name=f"n{LONE}"), "name", ""),
    (submit(working_dir=f"d{LONE}"), "working_dir", ""),
    (submit(after=[LONE]), "after", "not valid Unicode"),
    (submit(resources={"partition": LONE}), "resources.partition", ""),
    ({"cluster": f"local{LONE}", "command": "x"}, "cluster", ""),
]

STRICT_NUMBERS = [
    (submit(resources={"nodes": True}), "resources.nodes"),
    (submit(resources={"nodes": "1"}), "resources.nodes"),
    (submit(resources={"nodes": 1.0}), "resources.nodes"),
    (submit(resources={"ntasks": False}), "resources.ntasks"),
    (submit(resources={"cpus_per_task": "2"}), "resources.cpus_per_task"),
    (submit(resources={"gpus": False}), "resources.gpus"),
    (submit(resources={"memory_mb": "100"}), "resources.memory_mb"),
    (submit(resources={"time_limit_minutes": True}), "resources.time_limit_minutes"),
    (submit(resources={"nodes": 10**30}), "resources.nodes"),
]

LIMITS = [
    (submit(working_dir="a" * 300), "working_dir", "cannot be used"),
    (submit(env={"BIG": "x" * 200_000}), "env", "larger than"),
    (submit(env={f"V{i}": "x" * 1000 for i in range(120)}), "env", "larger than"),
]


async def assert_refused(api, body: Any, field: str, text: str = "") -> None:
    status, answer = await api.call("POST", "jobs", body)
    assert status == 400, (status, answer)
    assert field in [e["field"] for e in answer["errors"]], answer
    assert text in json.dumps(answer, ensure_ascii=False), answer
    assert (await api.get("jobs"))["jobs"] == [], "a refused submit was stored"


@pytest.mark.parametrize(("body", "field", "text"), TEXT_FIELDS)
async def test_text_that_is_not_utf8_is_refused_naming_the_field(api, body, field, text):
    await assert_refused(api, body, field, text)


@pytest.mark.parametrize(("body", "field"), STRICT_NUMBERS)
async def test_numbers_are_strict(api, body, field):
    await assert_refused(api, body, field)


@pytest.mark.parametrize(("body", "field", "text"), LIMITS)
async def test_what_a_backend_could_not_take_is_refused(api, body, field, text):
    await assert_refused(api, body, field, text)


async def raw_post(jp_fetch, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await jp_fetch(
        "parallelworks-lab", "jobs", method="POST", body=body, raise_error=False
    )
    return response.code, json.loads(response.body)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"\xa5", "not UTF-8"),
        (b'{"cluster": "local", "command": "\xff"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"cluster": "local", "resources": {"nodes": 1' + b"0" * 5000 + b"}}", "digits"),
        (b'{"cluster": ', "not valid JSON"),
        (b'{"cluster": "local", "command": "x", "resources": {"nodes": NaN}}', ""),
        (b'{"cluster": "local", "command": "x", "resources": {"nodes": 1e400}}', ""),
        (b'"just a string"', "JSON object"),
    ],
    ids=["not-utf8", "not-utf8-inside", "deep", "5000-digits", "truncated", "nan", "inf", "str"],
)
async def test_malformed_bodies_are_400(jp_fetch, api, body, text):
    status, answer = await raw_post(jp_fetch, body)
    assert status == 400, answer
    assert answer["errors"] and answer["errors"][0]["field"] in ("body", "resources.nodes"), answer
    assert text in answer["message"], answer
    assert (await api.get("jobs"))["jobs"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "9" * 40}, "cursor"),
        ({"cursor": "9223372036854775808"}, "cursor"),
        ({"cursor": "9" * 5000}, "cursor"),
        ({"cursor": "١٢"}, "cursor"),
        ({"limit": "9" * 5000}, "limit"),
        ({"limit": "1_0"}, "limit"),
        ({"limit": str(2**64)}, "limit"),
    ],
)
async def test_out_of_range_list_parameters_are_400(api, params, field):
    status, answer = await api.call("GET", "jobs", params=params)
    assert status == 400, (params, answer)
    assert answer["errors"][0]["field"] == field, answer


async def test_largest_cursor_is_fine(api):
    assert (await api.get("jobs", cursor=str(2**63 - 1)))["jobs"] == []


async def test_log_offsets_are_bounded(api):
    job = await api.submit(command="echo some output")
    await api.wait(job["id"], {"COMPLETED"})
    logs = f"jobs/{job['id']}/logs"
    for offset in (2**63, 2**64, 2**53, int("9" * 30)):
        status, answer = await api.call("GET", logs, params={"offset": str(offset)})
        assert status == 400 and answer["errors"][0]["field"] == "offset", (offset, answer)
    # Past the end of the file (even far past what a filesystem can seek to): nothing more.
    for offset in (12, 2**44, 2**53 - 1):
        chunk = await api.get(logs, offset=str(offset))
        assert chunk == {"data": "", "offset": offset, "eof": True}, (offset, chunk)
