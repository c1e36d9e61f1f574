"""JobStore: every job the user submitted, in SQLite (WAL), so a server restart loses nothing.

A job row is written in state SUBMITTING, with a unique submit token, *before* the scheduler is
called; a crash between the two is then reconciled by looking the token up on the scheduler.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from .guidance.models import Provenance, Usage
from .guidance.reasons import explain
from .models import Job, ResourceRequest
from .privacy import is_secret_name, private_dir, redact_env, tighten, touch_private
from .states import TERMINAL_STATES, JobState
from .store_schema import migrate

log = logging.getLogger(__name__)

# How many intervals the poller asks the scheduler's accounting about a job that just ended
# (accounting can lag the job's end by a few seconds).
USAGE_TRIES = 6

# Columns a status update may change.
UPDATABLE = frozenset(
    {
        "native_id",
        "state",
        "raw_state",
        "reason",
        "exit_code",
        "started_at",
        "ended_at",
        "working_dir",
        "stdout_path",
        "stderr_path",
        "estimated_start",
    }
)


@dataclass
class LiveRow:
    """The columns a poll compares against the scheduler's answer: reading these for 10,000
    waiting jobs is cheap, where building 10,000 full :class:`Job` models is not."""

    id: str
    native_id: Optional[str]
    state: str
    raw_state: Optional[str]
    reason: Optional[str]
    exit_code: Optional[int]
    started_at: Optional[str]
    ended_at: Optional[str]
    estimated_start: Optional[str]
    stdout_path: Optional[str]
    stderr_path: Optional[str]
    terminal: bool = False


LIVE_COLUMNS = ", ".join(f.name for f in fields(LiveRow))


# Columns holding times (stored as ISO text).
TIME_COLUMNS = frozenset({"started_at", "ended_at", "estimated_start"})

# Jobs kept converted for listing (see JobStore.page): a few pages of the largest size.
PAGE_CACHE_SIZE = 4000


def journals(db_file: Path) -> list[Path]:
    """SQLite's companion files of ``db_file`` (present or not)."""
    return [db_file.with_name(db_file.name + s) for s in ("-wal", "-shm", "-journal")]


@functools.lru_cache(maxsize=4096)
def stored_resources(text: str) -> ResourceRequest:
    """A job's stored resources. Many jobs share the same few requests, and parsing (with the
    request model's input checks) was most of the cost of a page of jobs: parse each once.
    The instance is shared, so it is never changed in place (copies are: ``model_copy``)."""
    return ResourceRequest.model_validate_json(text)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: Optional[datetime]) -> Optional[str]:
    """How times are stored (and compared by the poller): ISO 8601 in UTC."""
    return None if value is None else value.astimezone(timezone.utc).isoformat()


class JobStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            # Private before SQLite creates it: its -wal/-shm/-journal files take its mode.
            private_dir(self.path.parent, tighten_existing=False)
            touch_private(self.path)
            tighten(journals(self.path))
        self._connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # Listed jobs by id, with the updated_at of the row they were built from. Every write
        # to a column a Job shows sets updated_at (to the microsecond), and the writes below
        # drop the id too, so a cached job is never older than its row.
        self._listed: OrderedDict[str, tuple[str, Job]] = OrderedDict()
        # Writes whose answer is already given (update_soon), applied before anything else.
        self._pending: dict[str, tuple[str, tuple[Any, ...]]] = {}
        self._connection.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        #: The schema version the file had when opened (0: new); migrated forward if older.
        self.opened_version = migrate(self._db, str(path))
        self.forget_secrets()

    def forget_secrets(self) -> int:
        """Blank secret-named env values kept by versions that stored them (new rows never
        hold them): overwritten in place (secure_delete) and out of the WAL. Returns how many
        rows changed."""
        rows = self._db.execute(
            "SELECT id, request FROM jobs WHERE request LIKE '%token%' OR request LIKE '%secret%'"
            " OR request LIKE '%password%' OR request LIKE '%key%'"
        ).fetchall()
        changed = []
        for job_id, text in rows:
            try:
                request = json.loads(text)
                env = request.get("env") or {}
                if not any(v for k, v in env.items() if is_secret_name(k)):
                    continue
            except (ValueError, AttributeError):
                continue
            changed.append((json.dumps({**request, "env": redact_env(env)}), job_id))
        if changed:
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executemany("UPDATE jobs SET request = ? WHERE id = ?", changed)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(changed)

    @property
    def _db(self) -> sqlite3.Connection:
        """The database, with every write :meth:`update_soon` left pending applied first, so
        no read (and no other write) ever sees the store without them."""
        if self._pending:
            self.flush()
        return self._connection

    def flush(self) -> None:
        """Apply the writes :meth:`update_soon` left pending (the event loop calls this on
        its next turn; any other use of the store does it first)."""
        while self._pending:
            job_id, (sql, params) = self._pending.popitem()
            try:
                self._connection.execute(sql, params)
            except sqlite3.Error as exc:
                # The row keeps what it had (a submitted job: SUBMITTING with its token, which
                # the poller finds on the scheduler), so a failed write loses nothing.
                log.warning("could not record job %s: %s", job_id, exc)

    def close(self) -> None:
        self.flush()
        self._connection.close()

    @staticmethod
    def _to_job(row: sqlite3.Row) -> Job:
        return Job(
            id=row["id"],
            cluster=row["cluster"],
            native_id=row["native_id"],
            name=row["name"],
            state=JobState(row["state"]),
            raw_state=row["raw_state"],
            reason=row["reason"],
            reason_explained=explain(row["reason"]),
            exit_code=row["exit_code"],
            terminal=bool(row["terminal"]),
            submitted_at=row["submitted_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            updated_at=row["updated_at"],
            resources=stored_resources(row["resources"]),
            working_dir=row["working_dir"],
            stdout_path=row["stdout_path"],
            stderr_path=row["stderr_path"],
            parent_id=row["parent_id"],
            array_task=row["array_task"],
            estimated_start=row["estimated_start"],
            usage=None if row["usage"] is None else Usage.model_validate_json(row["usage"]),
            provenance=(
                None
                if row["provenance"] is None
                else Provenance.model_validate_json(row["provenance"])
            ),
        )

    def insert(
        self,
        *,
        job_id: str,
        cluster: str,
        name: str,
        resources: ResourceRequest,
        submit_token: str,
        request: dict[str, Any],
        working_dir: Optional[str] = None,
        native_id: Optional[str] = None,
        parent_id: Optional[str] = None,
        array_task: Optional[str] = None,
        provenance: Optional[Provenance] = None,
        script_hash: Optional[str] = None,
    ) -> Job:
        now = iso(utcnow())
        cursor = self._db.execute(
            "INSERT INTO jobs (id, cluster, name, state, submitted_at, updated_at, resources,"
            " working_dir, submit_token, request, native_id, parent_id, array_task,"
            " provenance, script_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                job_id,
                cluster,
                name,
                JobState.SUBMITTING.value,
                now,
                now,
                resources.model_dump_json(),
                working_dir,
                submit_token,
                json.dumps(request),
                native_id,
                parent_id,
                array_task,
                None if provenance is None else provenance.model_dump_json(exclude_none=True),
                script_hash,
            ),
        )
        # RETURNING hands back the row as written (no second query); fetchall() runs the
        # statement to its end, which is when autocommit commits it: the row is durable (a
        # submit's token must be, before the scheduler is called) once this returns.
        rows = cursor.fetchall()
        return self._to_job(rows[0])

    def get(self, job_id: str) -> Optional[Job]:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._to_job(row)

    def find_native(self, cluster: str, native_id: str) -> Optional[Job]:
        row = self._db.execute(
            "SELECT * FROM jobs WHERE cluster = ? AND native_id = ? ORDER BY seq DESC LIMIT 1",
            (cluster, native_id),
        ).fetchone()
        return None if row is None else self._to_job(row)

    def request(self, job_id: str) -> Optional[dict[str, Any]]:
        """The submit request as it was received (what "resubmit with edits" starts from)."""
        row = self._db.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def submit_token(self, job_id: str) -> Optional[str]:
        row = self._db.execute("SELECT submit_token FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def delete(self, job_id: str) -> None:
        self._listed.pop(job_id, None)
        self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def update(self, job_id: str, **fields: Any) -> Optional[Job]:
        """Apply changed fields; returns the job if anything changed, else None."""
        current = self.get(job_id)
        if current is None:
            return None
        return self.update_from(current, **fields)

    def update_from(self, current: Job, **fields: Any) -> Optional[Job]:
        """:meth:`update` for a caller that holds the job as the store last returned it (a
        submit holds the row it just inserted): the changes are taken against ``current``,
        not read again. Returns the job as written if anything changed, else None."""
        changes = self._changes(current, fields)
        if not changes:
            return None
        self._listed.pop(current.id, None)
        rows = self._db.execute(
            self._update_sql(changes) + " RETURNING *", (*changes.values(), current.id)
        ).fetchall()  # run to its end: committed (autocommit) when this returns
        return self._to_job(rows[0]) if rows else None

    def update_soon(self, current: Job, **fields: Any) -> Job:
        """:meth:`update_from` whose write is left to the event loop's next turn: the job as
        it will be is returned at once (a submit answers without waiting for its second
        commit). Any use of the store before that turn applies the write first, so nothing
        ever reads the row without it. Only for writes whose loss in a crash is repaired by
        something else (a submitted job's row keeps its token, which the poller looks up on
        the scheduler after a restart); only plain columns, not times."""
        if any(key in TIME_COLUMNS for key in fields):
            raise ValueError(f"times are written with update_from: {sorted(fields)}")
        changes = self._changes(current, fields)
        if not changes:
            return current
        updated: dict[str, Any] = {key: fields.get(key, value) for key, value in changes.items()}
        if "state" in changes:
            updated["state"] = JobState(changes["state"])
        updated["terminal"] = bool(changes.get("terminal", current.terminal))
        updated["updated_at"] = datetime.fromisoformat(changes["updated_at"])
        if "reason" in changes:
            updated["reason_explained"] = explain(changes["reason"])
        job = current.model_copy(update=updated)
        self._listed.pop(current.id, None)
        if current.id in self._pending:
            self.flush()  # two pending writes of one job: keep them in order
        self._pending[current.id] = (self._update_sql(changes), (*changes.values(), current.id))
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop (scripts, tests): write now
            self.flush()
        return job

    @staticmethod
    def _update_sql(changes: dict[str, Any]) -> str:
        assignments = ", ".join(f"{key} = ?" for key in changes)
        return f"UPDATE jobs SET {assignments} WHERE id = ?"  # noqa: S608 - UPDATABLE names

    @staticmethod
    def _changes(current: Job, fields: dict[str, Any]) -> dict[str, Any]:
        """The column values ``fields`` change in ``current`` (with ``terminal``,
        ``estimated_start`` and ``updated_at`` where they follow), as stored; {} if none."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            old = getattr(current, key)
            if isinstance(value, JobState):
                value = value.value
                old = old.value if isinstance(old, JobState) else old
            if isinstance(value, datetime):
                if old is not None and abs((old - value).total_seconds()) < 1e-3:
                    continue
                value = iso(value)
            elif old == value:
                continue
            changes[key] = value
        if not changes:
            return changes
        if "state" in changes:
            terminal = JobState(changes["state"]) in TERMINAL_STATES
            changes["terminal"] = int(terminal)
            if terminal:
                changes["estimated_start"] = None
        changes["updated_at"] = iso(utcnow())
        return changes

    def set_usage(self, job_id: str, usage: Optional[Usage]) -> Optional[Job]:
        """Record what a finished job used (None: the scheduler could not say; stop asking)."""
        self._listed.pop(job_id, None)
        self._db.execute(
            "UPDATE jobs SET usage = ?, usage_wanted = 0, updated_at = ? WHERE id = ?",
            (None if usage is None else usage.model_dump_json(), iso(utcnow()), job_id),
        )
        return self.get(job_id)

    def want_usage(self, job_id: str) -> None:
        """Ask the scheduler's accounting what this finished job used (for a few intervals)."""
        self._db.execute(
            "UPDATE jobs SET usage_wanted = ? WHERE id = ? AND usage IS NULL", (USAGE_TRIES, job_id)
        )

    def usage_wanted(self, cluster: str) -> list[Job]:
        """Finished jobs on ``cluster`` whose usage the poller should still ask for."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE cluster = ? AND usage_wanted > 0 ORDER BY seq", (cluster,)
        ).fetchall()
        return [self._to_job(r) for r in rows]

    def usage_not_found(self, job_ids: Iterable[str]) -> None:
        """One more interval without an answer from the accounting for these jobs."""
        self._db.executemany(
            "UPDATE jobs SET usage_wanted = usage_wanted - 1 WHERE id = ? AND usage_wanted > 0",
            [(job_id,) for job_id in job_ids],
        )

    def history(
        self, cluster: str, *, script_hash: Optional[str], name: Optional[str], limit: int
    ) -> tuple[list[Job], Optional[str]]:
        """The newest measured runs of the same script (else of the same job name)."""
        for column, value in (("script_hash", script_hash), ("name", name)):
            if value is None:
                continue
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE cluster = ? AND {column} = ?"  # noqa: S608 - fixed
                " AND usage IS NOT NULL AND state = 'COMPLETED' ORDER BY seq DESC LIMIT ?",
                (cluster, value, limit),
            ).fetchall()
            if rows:
                return [self._to_job(r) for r in rows], column.replace("_hash", "")
        return [], None

    def page(
        self,
        *,
        cluster: Optional[str] = None,
        states: Iterable[JobState] = (),
        limit: int = 100,
        cursor: Optional[int] = None,
    ) -> tuple[list[Job], Optional[int]]:
        """Newest first. Returns the page and the cursor of the next page (None at the end)."""
        where: list[str] = []
        args: list[Any] = []
        if cluster is not None:
            where.append("cluster = ?")
            args.append(cluster)
        state_values = [s.value for s in states]
        if state_values:
            where.append(f"state IN ({', '.join('?' for _ in state_values)})")
            args.extend(state_values)
        if cursor is not None:
            where.append("seq < ?")
            args.append(cursor)
        sql = "SELECT seq, id, updated_at FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit + 1)
        keys = self._db.execute(sql, args).fetchall()
        more = len(keys) > limit
        keys = keys[:limit]
        next_cursor = int(keys[-1]["seq"]) if more and keys else None
        return self._listed_jobs([(k["id"], k["updated_at"]) for k in keys]), next_cursor

    def _listed_jobs(self, keys: list[tuple[str, str]]) -> list[Job]:
        """The jobs of a page, in order: converted once per change of their row.

        Building a Job from its row (validation, times, nested models) was most of what a
        page of 100 cost at 10,000 jobs; most rows of a page do not change between two reads.
        """
        listed = self._listed
        missing = [job_id for job_id, updated in keys if listed.get(job_id, ("",))[0] != updated]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE id IN ({', '.join('?' for _ in chunk)})",  # noqa: S608
                chunk,
            ).fetchall()
            for row in rows:
                listed[row["id"]] = (row["updated_at"], self._to_job(row))
        jobs = []
        for job_id, _ in keys:
            entry = listed.get(job_id)
            if entry is not None:  # None: deleted between the two queries
                listed.move_to_end(job_id)
                jobs.append(entry[1])
        while len(listed) > PAGE_CACHE_SIZE:
            listed.popitem(last=False)
        return jobs

    def live_rows(self, cluster: str) -> list[LiveRow]:
        """The poller's work list, light: see :class:`LiveRow`."""
        rows = self._db.execute(
            f"SELECT {LIVE_COLUMNS} FROM jobs"  # noqa: S608 - fixed column list
            " WHERE cluster = ? AND terminal = 0 ORDER BY seq",
            (cluster,),
        ).fetchall()
        return [LiveRow(*row) for row in rows]

    def live(self, cluster: str) -> list[Job]:
        """Jobs on ``cluster`` that have not reached a terminal state (the poller's work list)."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE cluster = ? AND terminal = 0 ORDER BY seq", (cluster,)
        ).fetchall()
        return [self._to_job(r) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
