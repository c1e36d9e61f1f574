"""A site's cluster list and a user's own additions (docs/deployment.md)."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from parallelworks_lab.backends.slurmrest import SlurmRestSettings, TokenSource

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


async def test_a_site_wide_slurmrest_entry_speaks_for_the_servers_own_account(
    tmp_path, monkeypatch
):
    # One entry for everyone: the user is the server's Unix account (not $USER), the token
    # file is in that account's home.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USER", "somebody-else")
    (tmp_path / ".slurm-jwt").write_text("SLURM_JWT=abc.def\n")
    settings = SlurmRestSettings(url="http://rest:6820", token={"file": "~/.slurm-jwt"})
    assert settings.user == pwd.getpwuid(os.geteuid()).pw_name
    token, _ = await TokenSource(settings.token, settings.user, None).get()
    assert token == "abc.def"
