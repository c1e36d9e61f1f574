"""The job store's schema and its forward migrations.

A user's ``jobs.sqlite`` outlives the version of the extension that made it. Its version is
kept in SQLite's ``PRAGMA user_version``; at start-up every migration above that number runs,
in order, in one transaction. A database from a *newer* version is refused with a clear
message and left untouched (an older server cannot know what the newer columns mean).
"""

from __future__ import annotations

import sqlite3

# Version 1: the first release's table. Never edit a released step: add a new one.
_V1 = """
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

# Version 2: array tasks under their array job.
_V2 = """
ALTER TABLE jobs ADD COLUMN parent_id TEXT;
ALTER TABLE jobs ADD COLUMN array_task TEXT;
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id);
CREATE INDEX IF NOT EXISTS jobs_native ON jobs (cluster, native_id);
"""

# Version 3: guidance (start estimates, measured usage, provenance, the script's hash for
# "what did this script use last time"). Jobs that had already ended before the upgrade are
# not measured after the fact (usage_wanted = 0): the scheduler may have forgotten them.
_V3 = """
ALTER TABLE jobs ADD COLUMN estimated_start TEXT;
ALTER TABLE jobs ADD COLUMN usage TEXT;
ALTER TABLE jobs ADD COLUMN usage_wanted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN provenance TEXT;
ALTER TABLE jobs ADD COLUMN script_hash TEXT;
CREATE INDEX IF NOT EXISTS jobs_usage_wanted ON jobs (cluster) WHERE usage_wanted > 0;
CREATE INDEX IF NOT EXISTS jobs_script ON jobs (cluster, script_hash, seq);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs (cluster, name, seq);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreVersionError(RuntimeError):
    """The database was written by a newer version of the extension."""


def _columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(jobs)")}


def _detected_version(db: sqlite3.Connection) -> int:
    """The version of a database written before versions were recorded (user_version 0)."""
    columns = _columns(db)
    if not columns:
        return 0  # a new, empty database
    if "parent_id" not in columns:
        return 1
    if "usage_wanted" not in columns:
        return 2
    return 3


def migrate(db: sqlite3.Connection, path: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; returns the version it had."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the job database {path} was written by a newer version of parallelworks-lab "
            f"(schema {version}; this version understands up to {SCHEMA_VERSION}). "
            "Nothing was changed: upgrade parallelworks-lab, or point `db_path` at another file."
        )
    if version == 0:
        version = _detected_version(db)
    if version == SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return version
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in MIGRATIONS[version:]:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return version
