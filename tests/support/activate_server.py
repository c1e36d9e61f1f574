"""A contract server for the Parallel Works ACTIVATE REST API, on the real Slurm test cluster.

It serves the endpoints parallelworks-lab uses, with bodies shaped like the published models of
``parallelworks-client`` 7.122.0: every body it sends is checked against those models
(:func:`check_body`) and any mismatch is recorded in ``ActivateServer.invalid`` for the tests to
assert on, so our guesses about the platform cannot drift from its published API.

Backing: the scheduler jobs are the real ``squeue`` of the test cluster, the queues its real
``sinfo``, job commands run the real ``scancel``/``scontrol``, and a Slurm cluster's SSH address
is the test cluster's sshd (127.0.0.1:2222, user pwlab) with its real host key. Only the
platform's own state (cluster list, statuses, start/resume) is simulated.

It runs in a thread with its own event loop, so plain (sync) pytest fixtures can start it and it
keeps answering while a test awaits the Jupyter server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import asyncssh
import attrs
import parallelworks_client.models as pwc
from parallelworks_client.types import Unset
from tornado import httpserver, netutil, web

ORG = "pwlab-org"
SEP = "|"


# -- checking bodies against parallelworks-client's models ------------------------------------


def _split_union(annotation: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in annotation:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def _matches(value: Any, annotation: str, where: str, problems: list[str]) -> bool:
    """Whether ``value`` (as parsed by the model's from_dict) fits the field's annotation."""
    for option in _split_union(annotation):
        if option == "Unset" and isinstance(value, Unset):
            return True
        if option == "None" and value is None:
            return True
        if option == "Any":
            return True
        if option == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if option == "str" and isinstance(value, str):
            return True
        if option == "bool" and isinstance(value, bool):
            return True
        if option.startswith("list[") and isinstance(value, list):
            inner = option[5:-1]
            sub: list[str] = []
            if all(_matches(v, inner, f"{where}[{i}]", sub) for i, v in enumerate(value)):
                return True
        if option.startswith("dict[") and isinstance(value, dict):
            return True
        cls = getattr(pwc, option, None)
        if isinstance(cls, type) and isinstance(value, cls):
            if attrs.has(cls):
                _check_instance(value, where, problems)
            return True
    problems.append(f"{where}: {value!r} is not {annotation}")
    return False


def _check_instance(obj: Any, where: str, problems: list[str]) -> None:
    for field in attrs.fields(type(obj)):
        if field.name == "additional_properties":
            continue
        annotation = field.type if isinstance(field.type, str) else str(field.type)
        _matches(getattr(obj, field.name), annotation, f"{where}.{field.name}", problems)


def check_body(model: Any, body: Any, where: str = "body") -> list[str]:
    """Problems of ``body`` against a parallelworks-client model ([] when it fits).

    ``model`` is a model class, ``[Model]`` for a list of them, or ``str``. The body must parse
    (required keys, enum values), every field must have its declared type, and it must survive
    a round trip unchanged (so it has no key the model does not know).
    """
    problems: list[str] = []
    if model is str:
        return [] if isinstance(body, str) else [f"{where}: {body!r} is not a string"]
    if isinstance(model, list):
        if not isinstance(body, list):
            return [f"{where}: expected a list"]
        for i, item in enumerate(body):
            problems += check_body(model[0], item, f"{where}[{i}]")
        return problems
    try:
        obj = model.from_dict(body)
    except (KeyError, ValueError, TypeError) as exc:
        return [f"{where}: does not parse as {model.__name__}: {exc!r}"]
    _check_instance(obj, where, problems)
    if obj.to_dict() != body:
        problems.append(f"{where}: changes in a round trip through {model.__name__}")
    return problems


# -- the server --------------------------------------------------------------------------------


def _cluster_body(
    name: str,
    *,
    status: str,
    ctype: str,
    info: dict[str, Any],
    proxied: bool = False,
    status_description: Optional[str] = None,
    host_key: Optional[str] = None,
    scheduler: str = "slurm",
) -> dict[str, Any]:
    ssh = info["ssh"]
    host_key = host_key or Path(ssh["host_public_key_file"]).read_text().strip()
    body: dict[str, Any] = {
        "activeNodes": 4 if status == "active" else 0,
        "description": f"{name} (backed by the Slurm test cluster)",
        "displayName": name.upper(),
        "favorite": False,
        "id": f"6540c0ffee{name}",
        "ipAddress": ssh["host"],
        "maxNodes": 4,
        "name": name,
        "requestedNodes": 4,
        "shouldPlatformProxy": proxied,
        "status": status,
        "tags": None,
        "type": ctype,
        "updateFailed": False,
        "connectionString": f"ssh -p {ssh['port']} {ssh['username']}@{ssh['host']}",
        "schedulerType": scheduler,
        "sshHostKeys": [host_key],
        "user": ssh["username"],
    }
    if status_description:
        body["statusDescription"] = status_description
    return body


def _other_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return bytes(key.export_public_key()).decode().strip()


class ActivateServer:
    def __init__(self, info: dict[str, Any], api_key: str, *, start_delay: float = 1.5) -> None:
        self.info = info
        self.api_key = api_key
        self.start_delay = start_delay
        self.env = dict(info["env"])
        self.clusters: dict[str, dict[str, Any]] = {
            "hpc": _cluster_body("hpc", status="active", ctype="existing", info=info),
            "cold": _cluster_body("cold", status="stopped", ctype="aws-slurm", info=info),
            "proxied": _cluster_body(
                "proxied", status="active", ctype="google-slurm", info=info, proxied=True
            ),
            # Its login node answers with a host key other than the one the platform reports.
            "rekeyed": _cluster_body(
                "rekeyed", status="active", ctype="oracle-slurm", info=info, host_key=_other_key()
            ),
            "pbs": _cluster_body(
                "pbs", status="active", ctype="existing", info=info, scheduler="pbs"
            ),
            "broken": _cluster_body(
                "broken",
                status="failed",
                ctype="azure-slurm",
                info=info,
                status_description="quota exceeded in region",
            ),
        }
        self._ready_at: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self.commands: list[tuple[str, str, str]] = []
        self.invalid: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Optional[httpserver.HTTPServer] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle (called from the test thread) -----------------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> ActivateServer:
        self._thread.start()
        self._call(self._listen())
        return self

    def pause(self) -> None:
        """Stop answering (connection refused), as if the platform were down."""
        self._call(self._unlisten())

    def resume(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._unlisten())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        sockets = netutil.bind_sockets(self.port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        app = web.Application([(r"/api/(.*)", PlatformHandler, {"server": self})])
        self._server = httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    # -- platform state ------------------------------------------------------------------------

    def cluster(self, name: str) -> Optional[dict[str, Any]]:
        body = self.clusters.get(name)
        if body is None:
            return None
        ready = self._ready_at.get(name)
        if ready is not None and time.monotonic() >= ready:
            body["status"] = "active"
            body["activeNodes"] = 4
            del self._ready_at[name]
        return body

    def start_cluster(self, name: str, action: str) -> tuple[int, Any]:
        body = self.cluster(name)
        assert body is not None
        wanted = "stopped" if action == "resume" else "off"
        if body["status"] != wanted:
            return 409, {
                "error": True,
                "message": f"cannot {action} a cluster that is {body['status']}",
                "code": "conflict",
            }
        body["status"] = "resuming" if action == "resume" else "provisioning"
        self._ready_at[name] = time.monotonic() + self.start_delay
        return 204, None

    async def run(self, *argv: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", **self.env},
        )
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    async def scheduler_jobs(self) -> list[dict[str, Any]]:
        """``SchedulerJob`` items from the real squeue, for every active Slurm cluster."""
        fmt = SEP.join(["%A", "%j", "%T", "%P", "%N", "%u", "%V", "%S"])
        code, out, err = await self.run("squeue", "-a", "-h", "-t", "all", "-r", "-o", fmt)
        assert code == 0, err
        jobs = []
        for line in out.splitlines():
            job_id, name, state, partition, nodes, user, submitted, started = line.split(SEP)
            for cluster in self.clusters.values():
                if self.cluster(cluster["name"]) and cluster["status"] == "active":
                    jobs.append(
                        {
                            "cluster": cluster["name"],
                            "clusterType": "slurm",
                            "createdAt": _epoch(submitted) * 1000,
                            "id": int(job_id),
                            "imageUrl": "",
                            "name": name,
                            "nodes": nodes,
                            "partition": partition,
                            "state": [state],
                            "time": _epoch(started),
                            "user": user,
                        }
                    )
        return jobs

    async def queues(self) -> dict[str, Any]:
        code, out, err = await self.run("sinfo", "-h", "-o", "%R|%a|%F|%l")
        assert code == 0, err
        code, conf, err = await self.run("scontrol", "show", "partition", "--oneliner")
        assert code == 0, err
        access = {}
        for line in conf.splitlines():
            fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
            access[fields["PartitionName"]] = fields
        queues = []
        for line in out.splitlines():
            name, avail, counts, limit = line.split(SEP)
            alloc, idle, other, total = (int(n) for n in counts.split("/"))
            fields = access[name]
            deny = fields.get("DenyAccounts")
            queues.append(
                {
                    "allocNodes": alloc,
                    "idleNodes": idle,
                    "name": name,
                    "otherNodes": other,
                    "state": avail.upper(),
                    "totalNodes": total,
                    # As the platform agent reports Slurm's lists: ["ALL"] when unrestricted.
                    "allowAccounts": fields.get("AllowAccounts", "ALL").split(","),
                    "allowQos": fields.get("AllowQos", "ALL").split(","),
                    "denyAccounts": deny.split(",") if deny else None,
                    "maxTime": limit,
                }
            )
        return {"schedulerType": "slurm", "queues": queues}

    async def command(self, job_id: str, action: str) -> dict[str, Any]:
        argv = {
            "cancel": ["scancel", job_id],
            "hold": ["scontrol", "hold", job_id],
            "release": ["scontrol", "release", job_id],
        }[action]
        code, out, err = await self.run(*argv)
        self.commands.append((job_id, action, "ok" if code == 0 else err.strip()))
        if code != 0:
            return {"success": False, "error": err.strip() or out.strip()}
        return {"success": True, "message": f"{action} sent"}


def _epoch(value: str) -> int:
    if not value or value in ("N/A", "Unknown"):
        return 0
    return int(time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%S")))


class PlatformHandler(web.RequestHandler):
    server: ActivateServer

    def initialize(self, server: ActivateServer) -> None:
        self.server = server

    def reply(self, status: int, body: Any, model: Any) -> None:
        if body is not None:
            problems = check_body(model, body, f"{self.request.method} {self.request.path}")
            self.server.invalid.extend(problems)
        self.set_status(status)
        if body is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def error(self, status: int, message: str, code: str) -> None:
        self.reply(status, {"error": True, "message": message, "code": code}, pwc.Error)

    def authorized(self) -> bool:
        expected = base64.b64encode(f"{self.server.api_key}:".encode()).decode()
        return self.request.headers.get("Authorization") == f"Basic {expected}"

    async def get(self, path: str) -> None:
        await self.dispatch("GET", path)

    async def post(self, path: str) -> None:
        await self.dispatch("POST", path)

    async def dispatch(self, method: str, path: str) -> None:
        server = self.server
        parts = path.strip("/").split("/")
        label = _label(method, parts)
        server.requests[label] += 1
        if not self.authorized():
            self.error(401, "Invalid or expired API key", "unauthenticated")
            return
        if label == "GET whoami/organization":
            self.reply(200, ORG, str)
        elif label == "GET clusters":
            bodies = [server.cluster(n) for n in list(server.clusters)]
            self.reply(200, [b for b in bodies if b], [pwc.GeneralCluster])
        elif label == "GET scheduler-jobs":
            self.reply(200, await server.scheduler_jobs(), [pwc.SchedulerJob])
        elif parts[:2] == ["organizations", ORG] and len(parts) >= 6:
            user, name, rest = parts[3], parts[5], parts[6:]
            cluster = server.cluster(name)
            if cluster is None or cluster["user"] != user:
                self.error(404, f"cluster {user}/{name} not found", "not_found")
            elif method == "GET" and not rest:
                self.reply(200, cluster, pwc.GeneralCluster)
            elif method == "GET" and rest == ["scheduler-queues"]:
                self.reply(200, await server.queues(), pwc.SchedulerQueuesResponse)
            elif method == "POST" and rest in (["resume"], ["provision"]):
                status, body = server.start_cluster(name, rest[0])
                if status == 204:
                    self.reply(204, None, None)
                else:
                    self.reply(status, body, pwc.Error)
            elif method == "POST" and len(rest) == 3 and rest[::2] == ["scheduler-jobs", "command"]:
                try:
                    body = json.loads(self.request.body)
                    action = pwc.SchedulerCommandBody.from_dict(body).action.value
                except (ValueError, KeyError, TypeError) as exc:
                    self.error(400, f"bad command body: {exc!r}", "invalid_request")
                    return
                answer = await server.command(rest[1], action)
                self.reply(200, answer, pwc.SchedulerCommandResponse)
            else:
                self.error(404, f"no route {method} /api/{path}", "not_found")
        else:
            self.error(404, f"no route {method} /api/{path}", "not_found")


def _label(method: str, parts: list[str]) -> str:
    if parts[:1] == ["organizations"] and len(parts) >= 6:
        rest = parts[6:]
        tail = "/".join("{id}" if r.isdigit() else r for r in rest)
        return f"{method} clusters/{{name}}" + (f"/{tail}" if tail else "")
    return f"{method} {'/'.join(parts[1:] if parts[:1] == ['auth'] else parts)}"
