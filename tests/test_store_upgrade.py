"""A user's job database survives upgrades: versioned schema, forward migrations at start-up,
and a clear refusal (nothing touched) for a database from a newer version."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from parallelworks_lab.models import ResourceRequest
from parallelworks_lab.states import JobState
from parallelworks_lab.store import JobStore
from parallelworks_lab.store_schema import MIGRATIONS, SCHEMA_VERSION, StoreVersionError

from .support.api import server_config

# The table exactly as the first release created it (parallelworks_lab/store.py in 94848eb).
FIRST_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    cluster      TEXT NOT NULL,
    native_id    TEXT,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL,
    raw_state    TEXT,
    reason       TEXT,
    exit_code    INTEGER,
    terminal     INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL,
    started_at   TEXT,
    ended_at     TEXT,
    updated_at   TEXT NOT NULL,
    resources    TEXT NOT NULL,
    working_dir  TEXT,
    stdout_path  TEXT,
    stderr_path  TEXT,
    submit_token TEXT NOT NULL UNIQUE,
    request      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_live ON jobs (cluster, terminal);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""


def first_release_db(path, count: int = 25) -> list[str]:
    """A database as the first release wrote it (no user_version), with ``count`` jobs."""
    db = sqlite3.connect(path)
    db.executescript(FIRST_SCHEMA)
    ids = []
    for i in range(count):
        job_id = uuid.uuid4().hex[:12]
        ids.append(job_id)
        state = "RUNNING" if i == 0 else "COMPLETED"
        db.execute(
            "INSERT INTO jobs (id, cluster, native_id, name, state, terminal, submitted_at,"
            " updated_at, resources, submit_token, request, reason)"
            " VALUES (?, 'local', ?, ?, ?, ?, '2025-01-01T00:00:00+00:00',"
            " '2025-01-01T00:00:00+00:00', ?, ?, '{}', ?)",
            (
                job_id,
                str(i + 1),
                f"old-{i}",
                state,
                int(state == "COMPLETED"),
                ResourceRequest(memory_mb=100).model_dump_json(),
                uuid.uuid4().hex,
                "Priority" if i == 0 else None,
            ),
        )
    db.commit()
    db.close()
    return ids


def test_a_first_release_database_opens_with_every_job(tmp_path):
    path = tmp_path / "jobs.sqlite"
    ids = first_release_db(path)
    store = JobStore(path)
    assert store.opened_version == 1
    assert store.count() == len(ids)
    assert {store.get(i).id for i in ids} == set(ids)  # type: ignore[union-attr]
    jobs, _ = store.page(limit=100)
    assert [j.name for j in jobs][-1] == "old-0"
    running = store.live("local")
    assert [j.id for j in running] == [ids[0]]
    assert running[0].reason_explained is not None  # new fields work on old rows
    assert running[0].usage is None and running[0].parent_id is None
    # Jobs that ended before the upgrade are not measured after the fact.
    assert store.usage_wanted("local") == []
    # The upgraded database takes new jobs with the new columns.
    store.insert(
        job_id="a" * 12,
        cluster="local",
        name="new",
        resources=ResourceRequest(),
        submit_token=uuid.uuid4().hex,
        request={},
        parent_id=ids[0],
        array_task="1",
    )
    store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == len(MIGRATIONS)
    reopened = JobStore(path)
    assert reopened.opened_version == SCHEMA_VERSION and reopened.count() == len(ids) + 1


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_every_released_version_migrates_forward(tmp_path, version):
    path = tmp_path / "jobs.sqlite"
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:version]:
        db.executescript(step)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    store = JobStore(path)
    assert store.opened_version == version
    job = store.insert(
        job_id="b" * 12,
        cluster="local",
        name="x",
        resources=ResourceRequest(),
        submit_token="t",
        request={},
    )
    assert job.state is JobState.SUBMITTING


def test_a_newer_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "jobs.sqlite"
    first_release_db(path, count=3)
    JobStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreVersionError, match="newer version of parallelworks-lab"):
        JobStore(path)
    assert path.read_bytes() == before


@pytest.fixture
def jp_server_config(tmp_path, local_cluster):
    path = tmp_path / "pwlab" / "jobs.sqlite"
    path.parent.mkdir(parents=True)
    first_release_db(path, count=3)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.commit()
    db.close()
    return server_config(tmp_path, [local_cluster])


async def test_the_server_says_why_instead_of_crashing(api, tmp_path):
    status, body = await api.call("GET", "jobs")
    assert status == 503
    assert "newer version of parallelworks-lab" in body["message"]
    assert "Nothing was changed" in body["message"]
    status, body = await api.call("POST", "jobs", {"cluster": "local", "command": "true"})
    assert status == 503
    db = sqlite3.connect(tmp_path / "pwlab" / "jobs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3
