"""Record what a backend says to its scheduler, once, against the real test clusters; replay it
in tests without any cluster, root or waiting.

What is recorded (one JSON file per backend and test, ``tests/data/recordings/<backend>/``):
every call the backend makes on its :class:`~parallelworks_lab.transports.Transport` (``run``:
argv, stdin, env, exit status, stdout, stderr; ``read_file``; ``is_dir``; ``home``) and every
HTTP exchange of the ``slurmrest`` backend (method, path, query, JSON body, status, JSON
answer), in the order they happened.

Run-specific values are replaced by placeholders ``<pw:name>`` when recording and put back when
replaying, so the same test matches its recording on any machine and any run:

* ``<pw:workdir>`` the test's working directory, ``<pw:tmp>`` its ``tmp_path``, ``<pw:state>``
  the dev cluster's state directory (slurm.conf, ...);
* ``<pw:idN>`` / ``<pw:idN.12>`` the N-th uuid the service or poller made in the test (our job
  ids are the first 12 hex digits, submit tokens the whole uuid);
* slurmrestd's ``update_time`` query value (a clock reading) is ``<pw:time>``;
* JWTs (``scontrol token``) are replaced by an unsigned stand-in with the same user claim.

Native job ids need no placeholder: the replay answers sbatch/qsub with the recorded id, so
the backend's later commands name the recorded ids again. Log bytes are stored as they were
(offsets must stay exact), except that values of secret-looking ``NAME=value`` lines are masked
with as many ``*``.

Replay rules (:class:`Replayer`):

* A command that changes the scheduler (submit, cancel, hold, release, any non-GET HTTP
  request) must be the next such command of the recording, exactly; anything else is a
  :class:`ReplayMiss` naming the command and the nearest recorded one.
* A query (squeue, qstat, sacct, read_file, GET ...) is answered with the next recorded answer
  for the same request, but never with one recorded after a change that has not been replayed
  yet (a job is never cancelled before its ``scancel``), and preferably not before the other
  requests recorded before it were replayed (so a log is read while the job still runs): that
  soft order gives way after ``patience`` seconds when the replay never asks for them. Past the
  last recorded answer, the last one is repeated. A query never recorded is a miss, except a
  best-effort detail query (:func:`best_effort`: ``qstat -j N``, which the server asks only
  while someone looks at a waiting job, so whether it is asked depends on timing): never
  recorded for that job, it fails as a lost connection would, which the server must tolerate.
* An answer recorded before the last replayed change is not repeated while a newer one waits
  for its turn: a ``qstat`` from before a ``qhold`` would undo the hold in the job's state.

Because answers advance as fast as they are asked for, the replay polls with short intervals
and the test's own sleeps are shortened: nothing waits for the scheduler's real time.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import re
import shlex
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import httpx
import pytest

from parallelworks_lab.identity import unix_user
from parallelworks_lab.transports import (
    CommandResult,
    LocalTransport,
    SSHTransport,
    SSHTransportSettings,
    Transport,
    TransportError,
)

FORMAT = 1
RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "recordings"
RECORD_COMMAND = "make record  (PWLAB_RECORD=1 pytest tests/test_contract.py, root, Debian)"
PLACEHOLDER = re.compile(r"<pw:([A-Za-z0-9_.]+)>")
# Commands that change the scheduler's state: replayed in their recorded order, exactly.
CONTROL_COMMANDS = {"scancel", "qdel", "qhold", "qrls", "qmod"}
SCONTROL_CHANGES = {"uhold", "hold", "release", "update", "requeue", "suspend", "resume"}
# What identifies a request of each kind (the rest of an event is the answer).
REQUEST_FIELDS = {
    "run": ("argv", "stdin", "env", "cwd"),
    "read_file": ("path", "offset", "limit"),
    "is_dir": ("path",),
    "home": (),
    "http": ("method", "path", "params", "body"),
}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|AUTH|COOKIE", re.I)
ENV_LINE = re.compile(rb"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.M)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
FAR_FUTURE = 4102444800  # 2100-01-01: a replayed token never needs refreshing


class ReplayMiss(AssertionError):
    """The backend asked for something the recording does not have."""


# -- placeholders ------------------------------------------------------------------------------


class Substitutions:
    """Run-specific values and their placeholders."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        if value:
            self.values[name] = value

    def normalize(self, text: str) -> str:
        for name, value in sorted(self.values.items(), key=lambda kv: -len(kv[1])):
            text = text.replace(value, f"<pw:{name}>")
        return text

    def restore(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.values.get(m.group(1), m.group(0)), text)

    def normalize_data(self, data: Any) -> Any:
        return _map_strings(data, self.normalize)

    def restore_data(self, data: Any) -> Any:
        return _map_strings(data, self.restore)


def best_effort(event: dict[str, Any]) -> bool:
    """A query the server asks only depending on timing and goes on without (see above)."""
    argv = event.get("argv") or []
    return event["op"] == "run" and argv[:2] == ["qstat", "-j"]


def _map_strings(data: Any, fn: Any) -> Any:
    if isinstance(data, str):
        return fn(data)
    if isinstance(data, list):
        return [_map_strings(v, fn) for v in data]
    if isinstance(data, dict):
        return {fn(k): _map_strings(v, fn) for k, v in data.items()}
    return data


class Ids:
    """Stands in for the ``uuid`` module where the service and poller make job ids and submit
    tokens: each uuid gets the placeholder ``idN`` in the order it was made."""

    def __init__(self, subs: Substitutions) -> None:
        self._subs = subs
        self._count = 0

    def uuid4(self) -> uuid.UUID:
        value = uuid.uuid4()
        self._count += 1
        self._subs.add(f"id{self._count}", value.hex)
        self._subs.add(f"id{self._count}.12", value.hex[:12])
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


# -- scrubbing ---------------------------------------------------------------------------------


def fake_jwt(token: str) -> str:
    """An unsigned token with the real one's user claim, that never expires."""
    claims: dict[str, Any] = {}
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        pass

    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    kept = {"sun": claims.get("sun", "recorded"), "iat": 0, "exp": FAR_FUTURE}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(kept)}.replayed"


def scrub_text(text: str) -> str:
    return JWT.sub(lambda m: fake_jwt(m.group(0)), text)


def mask_secrets(data: bytes) -> bytes:
    """Values of secret-looking ``NAME=value`` lines replaced by as many ``*`` (lengths kept:
    log offsets must not move)."""

    def mask(m: re.Match[bytes]) -> bytes:
        if SECRET_NAME.search(m.group(1).decode()):
            return m.group(1) + b"=" + b"*" * len(m.group(2))
        return m.group(0)

    return ENV_LINE.sub(mask, data)


# -- events ------------------------------------------------------------------------------------


def canonical_arg(arg: str) -> str:
    """A comma-separated list of job ids in any order (it comes from a set) is one request."""
    if re.fullmatch(r"[0-9_.\[\]-]+(,[0-9_.\[\]-]+)+", arg):
        return ",".join(sorted(arg.split(",")))
    return arg


def request_key(event: dict[str, Any]) -> str:
    op = event["op"]
    parts: list[Any] = [op]
    for name in REQUEST_FIELDS[op]:
        value = event.get(name)
        if name == "argv":
            value = [canonical_arg(a) for a in value]
        parts.append(value)
    return json.dumps(parts, sort_keys=True)


def is_change(event: dict[str, Any]) -> bool:
    """Does this request change the scheduler's state (as opposed to asking about it)?"""
    if event["op"] == "run":
        argv = event["argv"]
        if event.get("idempotent") is False or argv[0] in CONTROL_COMMANDS:
            return True
        return argv[0] == "scontrol" and len(argv) > 1 and argv[1] in SCONTROL_CHANGES
    if event["op"] == "http":
        return bool(event["method"] != "GET")
    return False


def describe(event: dict[str, Any]) -> str:
    op = event["op"]
    if op == "run":
        text = shlex.join(event["argv"])
        if event.get("stdin"):
            text += f"  <<< {event['stdin']!r}"
        if event.get("env"):
            text += f"  env={event['env']}"
        return text
    if op == "http":
        text = f"{event['method']} {event['path']}"
        if event.get("params"):
            text += f" params={json.dumps(event['params'], sort_keys=True)}"
        if event.get("body") is not None:
            text += f" body={json.dumps(event['body'], sort_keys=True)}"
        return text
    args = ", ".join(repr(event.get(name)) for name in REQUEST_FIELDS[op])
    return f"{op}({args})"


def dedupe(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a query whose answer repeats the previous answer to the same query: the replay
    repeats an answer until the next one is due anyway, so polling loops shrink to their
    changes."""
    last: dict[str, str] = {}
    kept = []
    for event in events:
        key = request_key(event)
        answer = json.dumps({k: v for k, v in event.items()}, sort_keys=True)
        if not is_change(event) and last.get(key) == answer:
            continue
        last[key] = answer
        kept.append(event)
    return kept


# -- a session: recording or replaying one test ------------------------------------------------


class Session:
    def __init__(self, backend: str, test: str, subs: Substitutions) -> None:
        self.backend = backend
        self.test = test
        self.subs = subs

    @property
    def path(self) -> Path:
        return RECORDINGS / self.backend / f"{self.test}.json"


class Recording(Session):
    def __init__(self, backend: str, test: str, subs: Substitutions) -> None:
        super().__init__(backend, test, subs)
        self.events: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def save(self, meta: dict[str, Any]) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"format": FORMAT, **meta, "events": dedupe(self.events)}
        self.path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
        return self.path


class Replayer(Session):
    """Serves a recording; see the module docstring for the rules."""

    def __init__(
        self,
        backend: str,
        test: str,
        subs: Substitutions,
        events: list[dict[str, Any]],
        patience: float = 0.3,
        wait_for_change: float = 2.0,
    ) -> None:
        super().__init__(backend, test, subs)
        self.events = events
        self.keys = [request_key(e) for e in events]
        self.changes = [i for i, e in enumerate(events) if is_change(e)]
        self.by_key: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            if not is_change(events[i]):
                self.by_key.setdefault(key, []).append(i)
        self.pointer: dict[str, int] = {}  # position in by_key[key] of the last answer given
        self.done: set[int] = set()  # events replayed, or given up on
        self.changes_done = 0
        self.blocked_since: dict[str, float] = {}
        self.patience = patience
        self.wait_for_change = wait_for_change
        self.misses: list[str] = []
        self.requests = 0

    @classmethod
    def load(cls, backend: str, test: str, subs: Substitutions) -> tuple[Replayer, dict[str, Any]]:
        path = RECORDINGS / backend / f"{test}.json"
        if not path.exists():
            pytest.fail(f"no recording {path}: record it with {RECORD_COMMAND}")
        document = json.loads(path.read_text())
        assert document["format"] == FORMAT, f"{path}: format {document['format']}"
        return cls(backend, test, subs, document["events"]), document

    def _miss(self, event: dict[str, Any], why: str, candidates: list[int]) -> ReplayMiss:
        wanted = describe(event)
        recorded = {describe(self.events[i]): i for i in candidates}
        nearest = difflib.get_close_matches(wanted, list(recorded), n=1, cutoff=0.0)
        message = (
            f"replay of {self.backend}/{self.test}: {why}\n"
            f"  asked:    {wanted}\n"
            f"  nearest recorded: {nearest[0] if nearest else '(nothing of this kind)'}\n"
            f"  (recording {self.path.relative_to(RECORDINGS.parents[2])}; if the change is "
            f"intended, record again with {RECORD_COMMAND})"
        )
        self.misses.append(message)
        return ReplayMiss(message)

    async def answer(self, event: dict[str, Any]) -> dict[str, Any]:
        """The recorded answer to ``event`` (a request, normalized); ReplayMiss if none.

        A query asked before the change its answer was recorded after (and with no answer of
        its own since the last change) waits for that change, up to ``wait_for_change``
        seconds: a squeue asked between two sbatch that the recording did not ask there must
        not get a stale answer that lacks the second job."""
        deadline = time.monotonic() + self.wait_for_change
        while True:
            answer = self.answer_now(event, give_up=time.monotonic() >= deadline)
            if answer is not None:
                await asyncio.sleep(0)  # like a real answer, let others run meanwhile
                return answer
            await asyncio.sleep(0.002)

    def answer_now(self, event: dict[str, Any], give_up: bool = True) -> Optional[dict[str, Any]]:
        """The answer to ``event`` now; None: better wait for the next change."""
        self.requests += 1
        key = request_key(event)
        same_op = [i for i, e in enumerate(self.events) if e["op"] == event["op"]]
        if is_change(event):
            if self.changes_done >= len(self.changes):
                raise self._miss(event, "a change to the scheduler not in the recording", same_op)
            expected = self.changes[self.changes_done]
            if self.keys[expected] != key:
                raise self._miss(
                    event,
                    "not the change the recording made next "
                    f"(expected: {describe(self.events[expected])})",
                    [i for i in self.changes if i >= expected],
                )
            self.changes_done += 1
            self.done.add(expected)
            return self.events[expected]
        positions = self.by_key.get(key)
        if not positions and best_effort(event):
            return {"raise": "not in the recording (a best-effort query: the server goes on)"}
        if not positions:
            raise self._miss(event, "a request that was never recorded", same_op)
        at = self.pointer.get(key, -1)
        if at + 1 < len(positions):
            candidate = positions[at + 1]
            if self._after_next_change(candidate):
                last_change = self.changes[self.changes_done - 1] if self.changes_done else -1
                if at >= 0 and positions[at] > last_change:
                    return self.events[positions[at]]  # still the current answer: repeat it
                if not give_up:
                    return None
                advance = at < 0  # waited long enough: the recorded answer is all there is
            else:
                advance = at < 0 or self._others_done(key, candidate)
                last_change = self.changes[self.changes_done - 1] if self.changes_done else -1
                if not advance and positions[at] < last_change and not give_up:
                    # The answer given last was recorded before a change the replay has since
                    # made (say a qhold): repeating it would undo that change in the job's
                    # state. Wait for the queries recorded before the next answer instead.
                    return None
            if advance:
                at += 1
                self.pointer[key] = at
                self.done.add(positions[at])
        return self.events[positions[max(at, 0)]]

    def _after_next_change(self, index: int) -> bool:
        """Was event ``index`` recorded after a change the replay has not made yet?"""
        if self.changes_done >= len(self.changes):
            return False
        return self.changes[self.changes_done] < index

    def _others_done(self, key: str, candidate: int) -> bool:
        """Have the queries recorded before ``candidate`` been replayed (or given up on)?"""
        pending = [
            i for i in range(candidate) if i not in self.done and not is_change(self.events[i])
        ]
        if not pending:
            self.blocked_since.pop(key, None)
            return True
        since = self.blocked_since.setdefault(key, time.monotonic())
        if time.monotonic() - since < self.patience:
            return False
        # Those requests are not coming (the replay's timing differs): stop waiting for them.
        self.done.update(pending)
        self.blocked_since.pop(key, None)
        return True

    def forget(self) -> None:
        """Done with this replay (a test that expected a miss): nothing left to report."""
        self.misses.clear()
        self.changes_done = len(self.changes)

    def unreplayed_changes(self) -> list[str]:
        return [describe(self.events[i]) for i in self.changes[self.changes_done :]]


# -- transports --------------------------------------------------------------------------------


def run_event(
    subs: Substitutions,
    argv: list[str],
    input: Optional[str],
    env: Optional[dict[str, str]],
    idempotent: bool,
    umask: Optional[int],
    cwd: Optional[str] = None,
) -> dict[str, Any]:
    """A command as it is recorded and as the replay looks it up (the same fields for both)."""
    event: dict[str, Any] = {
        "op": "run",
        "argv": [subs.normalize(a) for a in argv],
        "stdin": subs.normalize(input) if input is not None else None,
        "env": subs.normalize_data(env or {}),
    }
    if not idempotent:
        event["idempotent"] = False
    if umask is not None:
        event["umask"] = f"{umask:03o}"  # part of the command: a changed umask is a miss
    if cwd is not None:
        event["cwd"] = subs.normalize(cwd)
    return event


class RecordingMixin:
    """Over a real transport class: does the real thing and records it."""

    session: Recording

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        timeout: float = 60.0,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
        start_ahead: bool = False,
    ) -> CommandResult:
        subs = self.session.subs
        event = run_event(subs, argv, input, env, idempotent, umask, cwd)
        try:
            result: CommandResult = await super().run(  # type: ignore[misc]
                argv,
                input=input,
                env=env,
                timeout=timeout,
                idempotent=idempotent,
                umask=umask,
                cwd=cwd,
                start_ahead=start_ahead,
            )
        except TransportError as exc:
            event["raise"] = subs.normalize(str(exc))
            self.session.add(event)
            raise
        except NotADirectoryError:
            event["error"] = "NotADirectoryError"
            self.session.add(event)
            raise
        event["returncode"] = result.returncode
        event["stdout"] = scrub_text(subs.normalize(result.stdout))
        event["stderr"] = scrub_text(subs.normalize(result.stderr))
        self.session.add(event)
        return result

    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        event: dict[str, Any] = {
            "op": "read_file",
            "path": self.session.subs.normalize(path),
            "offset": offset,
            "limit": limit,
        }
        try:
            data: bytes = await super().read_file(path, offset, limit)  # type: ignore[misc]
        except FileNotFoundError:
            event["error"] = "FileNotFoundError"
            self.session.add(event)
            raise
        data = mask_secrets(data)
        try:
            event["data"] = data.decode()
        except UnicodeDecodeError:
            event["data_b64"] = base64.b64encode(data).decode()
        self.session.add(event)
        return data

    async def is_dir(self, path: str) -> bool:
        result: bool = await super().is_dir(path)  # type: ignore[misc]
        self.session.add(
            {"op": "is_dir", "path": self.session.subs.normalize(path), "result": result}
        )
        return result

    async def home(self) -> str:
        result: str = await super().home()  # type: ignore[misc]
        self.session.add({"op": "home", "result": self.session.subs.normalize(result)})
        return result


class ReplayMixin:
    """Over a transport class: answers from the recording, never runs or connects."""

    session: Replayer
    commands_run: int

    async def _answer(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self.session.answer(event)

    async def run(
        self,
        argv: list[str],
        *,
        input: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
        timeout: float = 60.0,
        idempotent: bool = True,
        umask: Optional[int] = None,
        cwd: Optional[str] = None,
        start_ahead: bool = False,
    ) -> CommandResult:
        self.commands_run += 1
        subs = self.session.subs
        event = run_event(subs, argv, input, env, idempotent, umask, cwd)
        answer = await self._answer(event)
        if "raise" in answer:
            raise TransportError(subs.restore(answer["raise"]))
        if answer.get("error") == "NotADirectoryError":
            raise NotADirectoryError(cwd)
        return CommandResult(
            answer["returncode"], subs.restore(answer["stdout"]), subs.restore(answer["stderr"])
        )

    async def read_file(self, path: str, offset: int, limit: int) -> bytes:
        answer = await self._answer(
            {
                "op": "read_file",
                "path": self.session.subs.normalize(path),
                "offset": offset,
                "limit": limit,
            }
        )
        await asyncio.sleep(0)
        if answer.get("error") == "FileNotFoundError":
            raise FileNotFoundError(path)
        if "data_b64" in answer:
            return base64.b64decode(answer["data_b64"])
        return str(answer["data"]).encode()

    async def is_dir(self, path: str) -> bool:
        answer = await self._answer({"op": "is_dir", "path": self.session.subs.normalize(path)})
        return bool(answer["result"])

    async def home(self) -> str:
        return self.session.subs.restore((await self._answer({"op": "home"}))["result"])

    async def close(self) -> None:
        pass


class RecordingLocalTransport(RecordingMixin, LocalTransport):
    pass


class RecordingSSHTransport(RecordingMixin, SSHTransport):
    pass


class ReplayLocalTransport(ReplayMixin, LocalTransport):
    pass


class ReplaySSHTransport(ReplayMixin, SSHTransport):
    pass


# -- HTTP (slurmrestd) -------------------------------------------------------------------------


def http_request_event(request: httpx.Request, subs: Substitutions) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in request.url.params.multi_items():
        params[name] = "<pw:time>" if name == "update_time" else subs.normalize(value)
    body: Any = None
    content = request.content
    if content:
        try:
            body = subs.normalize_data(json.loads(content))
        except ValueError:
            body = {"raw": subs.normalize(content.decode(errors="replace"))}
    return {
        "op": "http",
        "method": request.method,
        "path": request.url.path,
        "params": params,
        "body": body,
    }


def trim_answer(event: dict[str, Any], data: Any) -> Any:
    """slurmrestd's API description: the backend reads only which paths (API versions) are
    served, so only their names are kept (130 kB less per recording)."""
    if event["path"].endswith("/openapi/v3") and isinstance(data, dict):
        event["trimmed"] = "API description: only the names of its paths are kept"
        paths = {p: {} for p in data.get("paths") or {}}
        return {"openapi": data.get("openapi"), "info": data.get("info"), "paths": paths}
    return data


class RecordingHTTPTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, session: Recording) -> None:
        self.inner = inner
        self.session = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        event = http_request_event(request, self.session.subs)
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.HTTPError as exc:
            event["raise"] = type(exc).__name__
            self.session.add(event)
            raise
        content = await response.aread()
        event["status"] = response.status_code
        try:
            data = json.loads(content) if content else None
            event["json"] = self.session.subs.normalize_data(trim_answer(event, data))
        except ValueError:
            event["text"] = self.session.subs.normalize(content.decode(errors="replace"))
        self.session.add(event)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class ReplayHTTPTransport(httpx.AsyncBaseTransport):
    def __init__(self, session: Replayer) -> None:
        self.session = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.session.answer(http_request_event(request, self.session.subs))
        if "raise" in answer:
            raise getattr(httpx, answer["raise"], httpx.HTTPError)("recorded failure")
        if answer.get("json") is not None:
            data = self.session.subs.restore_data(answer["json"])
            return httpx.Response(answer["status"], json=data, request=request)
        text = self.session.subs.restore(answer.get("text") or "")
        return httpx.Response(answer["status"], content=text.encode(), request=request)


async def settle(service: Any, cluster: str, timeout: float) -> None:
    """Wait until the poller has nothing left to ask about ``cluster``'s jobs: none live, no
    accounting usage still wanted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.store.live_rows(cluster) and not service.store.usage_wanted(cluster):
            return
        await asyncio.sleep(0.05)


# -- wiring into the server under test ---------------------------------------------------------


def _install(monkeypatch: pytest.MonkeyPatch, session: Recording | Replayer) -> None:
    """Backends built from now on talk through ``session``; our ids get placeholders."""
    from parallelworks_lab import poller, service_actions
    from parallelworks_lab.backends import cli, slurmrest, slurmrest_http

    replay = isinstance(session, Replayer)

    def make_transport(settings: Any) -> Transport:
        ssh = isinstance(settings, SSHTransportSettings)
        if replay:
            cls: type[Transport] = ReplaySSHTransport if ssh else ReplayLocalTransport
        else:
            cls = RecordingSSHTransport if ssh else RecordingLocalTransport
        transport = cls(settings)  # type: ignore[call-arg]
        transport.session = session  # type: ignore[attr-defined]
        return transport

    real_client = httpx.AsyncClient

    def async_client(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        if isinstance(session, Replayer):
            kwargs["transport"] = ReplayHTTPTransport(session)
        else:
            inner = httpx.AsyncHTTPTransport(
                verify=kwargs.get("verify", True), limits=kwargs.get("limits", httpx.Limits())
            )
            kwargs["transport"] = RecordingHTTPTransport(inner, session)
        return real_client(*args, **kwargs)

    proxy = SimpleNamespace(**{n: getattr(httpx, n) for n in dir(httpx) if not n.startswith("_")})
    proxy.AsyncClient = async_client
    monkeypatch.setattr(cli, "make_transport", make_transport)
    monkeypatch.setattr(slurmrest, "make_transport", make_transport)
    monkeypatch.setattr(slurmrest_http, "httpx", proxy)
    ids = Ids(session.subs)
    monkeypatch.setattr(service_actions, "uuid", ids)
    monkeypatch.setattr(poller, "uuid", ids)


def _substitutions(workdir: Path, tmp_path: Path, info: dict[str, Any]) -> Substitutions:
    subs = Substitutions()
    subs.add("state", str(info.get("state_dir") or ""))  # the dev cluster's files (conf, logs)
    subs.add("workdir", str(workdir))
    subs.add("tmp", str(tmp_path))
    subs.add("tmp", str(tmp_path.resolve()))
    return subs


def scheduler_label(backend: str, info: dict[str, Any]) -> str:
    if backend.startswith("sge"):
        return f"Son of Grid Engine {info.get('sge_version', '?')}"
    label = f"Slurm {info.get('slurm_version', '?')}"
    if backend == "slurmrest":
        label += f", slurmrestd API {info.get('rest', {}).get('api_version', '?')}"
    return label


@contextmanager
def recording(
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    test: str,
    info: dict[str, Any],
    workdir: Path,
    tmp_path: Path,
) -> Iterator[Recording]:
    """Record this test's exchanges with its scheduler; saved when the test passes (the caller
    decides by calling ``save``)."""
    session = Recording(backend, test, _substitutions(workdir, tmp_path, info))
    _install(monkeypatch, session)
    yield session


def recording_meta(backend: str, test: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": backend,
        "test": f"tests/test_contract.py::{test}",
        "scheduler": scheduler_label(backend, info),
        "source": "recorded against the dev test cluster (dev/slurm, dev/sge)",
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "recorded_with": RECORD_COMMAND,
        "user": unix_user(),
    }


def save_cluster(backend: str, info: dict[str, Any]) -> None:
    """The test cluster's description (cluster.json of dev/*/up.sh), for the replayed tests."""
    path = RECORDINGS / backend / "cluster.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"scheduler": scheduler_label(backend, info), "info": info}
    path.write_text(json.dumps(document, indent=1) + "\n")


def load_cluster(backend: str) -> dict[str, Any]:
    path = RECORDINGS / backend / "cluster.json"
    if not path.exists():
        pytest.fail(f"no recording {path}: record it with {RECORD_COMMAND}")
    info: dict[str, Any] = json.loads(path.read_text())["info"]
    return info


@contextmanager
def replaying(
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    test: str,
    workdir: Path,
    tmp_path: Path,
) -> Iterator[Replayer]:
    """Serve this test's recording to every backend built meanwhile."""
    from parallelworks_lab import poller
    from parallelworks_lab.backends import cli

    subs = _substitutions(workdir, tmp_path, load_cluster(backend))
    session, document = Replayer.load(backend, test, subs)
    _install(monkeypatch, session)
    user = document.get("user") or unix_user()
    monkeypatch.setattr(cli, "unix_user", lambda: user)
    monkeypatch.setattr(poller, "MIN_GAP_SECONDS", 0.005)
    yield session
