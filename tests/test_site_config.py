"""A site's cluster list and a user's own additions (docs/deployment.md)."""

from __future__ import annotations

import json

import pytest

from .conftest import server_config

MINE = {"id": "mine", "kind": "local", "slots": 1, "description": "my own"}


@pytest.fixture
def jp_server_config(tmp_path, local_cluster):
    config = server_config(tmp_path, [])
    config["ParallelWorksLabApp"]["extra_clusters"] = [MINE]
    return config


async def test_a_users_extra_cluster_comes_after_the_site_list_not_instead(jp_fetch):
    # No site list here: the built-in `local` cluster stays, the user's own comes after it.
    response = await jp_fetch("parallelworks-lab", "clusters")
    clusters = json.loads(response.body)["clusters"]
    assert [c["id"] for c in clusters] == ["local", "mine"]
    assert clusters[1]["description"] == "my own"
