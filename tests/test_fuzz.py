"""Property-based fuzzing of the whole REST API from its own /openapi.json: no request, valid
or not, is a server error (5xx).

Against a real `jupyter server` with the extension and its `local` cluster (running jobs
inert: see support/fuzz_backend.py). Each operation gets MAX_EXAMPLES valid and MAX_EXAMPLES invalid
requests, which keeps the whole run well under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from parallelworks_lab.openapi import openapi_spec

from .support.server_process import TOKEN, Server

# make test's bound; set PWLAB_FUZZ_EXAMPLES higher for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("PWLAB_FUZZ_EXAMPLES", "25"))


def takes_input(operation: dict[str, Any]) -> bool:
    """A body or a query parameter: something that can be sent wrong (a path segment that is
    any string cannot)."""
    query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
    return bool(query) or "requestBody" in operation


# Every operation gets valid requests; those that take input, invalid ones too.
CASES = [
    (method.upper(), path, mode)
    for path, methods in openapi_spec()["paths"].items()
    for method, operation in methods.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or takes_input(operation)
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    server = Server(
        tmp,
        {
            "clusters": [{"id": "local", "kind": "local", "slots": 2, "max_time_minutes": 5}],
            "backend_classes": {"local": "tests.support.fuzz_backend.InertLocal"},
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_server: Server) -> Any:
    # The document the server itself serves, not one built here.
    loaded = schemathesis.openapi.from_dict(fuzz_server.get("openapi.json").json())
    loaded.config.update(base_url=fuzz_server.url, headers={"Authorization": f"token {TOKEN}"})
    return loaded


@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES]
)
def test_no_request_is_a_server_error(fuzz_schema, method, path, mode):
    operation = fuzz_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(timeout=10)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: "
            f"{response.text[:500]}\nreproduce: {case.as_curl_command()}"
        )

    check()
