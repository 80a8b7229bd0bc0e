"""A Nomad stand-in over real HTTP, following ``shared/nomad-api/CONTRACT.md``.

::

    async with NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2) as nomad:
        client = httpx.AsyncClient(base_url=nomad.address)
        nomad.scripts["hrwsi-task-1-attempt-1"] = Script(exit_code=3)

What it serves (plain-text errors everywhere, ``X-Nomad-Index`` on reads, blocking queries
with ``index``/``wait``, ``namespace``/``region`` checks, ACL tokens in ``X-Nomad-Token`` or
``Authorization: Bearer``):

- ``PUT|POST /v1/jobs`` and ``/v1/job/:id``: register with Canonicalize defaults, validation
  500s with go-multierror bodies, ``EnforceIndex`` semantics; ``GET /v1/jobs?prefix=``.
- ``PUT|POST /v1/jobs/parse``: the stand-in parses no HCL. An empty spec is 400
  ``Job spec is empty``; anything else is 400 ``Failed to parse job: …`` (register JSON).
- ``PUT|POST /v1/job/:id/dispatch`` with ``idempotency_token`` (query wins over body): the
  same token returns the existing child with ``EvalID: ""`` until the child is GC'd/purged.
- ``GET /v1/job/:id``, ``/summary``, ``/allocations``, ``/v1/allocation/:id``,
  ``/v1/evaluation/:id``, ``/v1/nodes``, ``/v1/node/:id``; ``DELETE /v1/job/:id[?purge]``;
  ``PUT /v1/system/gc``; ``GET|PUT|DELETE /v1/var/:path`` (Nomad variables, kept in
  :attr:`NomadStandIn.variables`).
- ``GET /v1/event/stream``: ndjson, ``{}`` heartbeats every ``heartbeat_s``, ``topic=T[:key]``
  filters, inclusive ``index``, a ring buffer of ``event_buffer`` frames.

The simulated cluster: ``nodes`` (names are VM names, ``unique.hostname`` = name, drivers
``docker``, ``exec``, ``raw_exec``). Placement honours equality/inequality/regexp constraints
on ``${attr.unique.hostname}``, ``${node.unique.name}`` and ``${attr.*}`` and the driver;
a run no node can take gets a *complete* evaluation with ``FailedTGAllocs`` and a
``BlockedEval`` and stays ``pending`` with ``Queued: 1`` until a fitting node is added.
Each allocation plays a :class:`Script` (looked up in ``scripts`` by job id, then via the
``rule`` callable, else a default success). Finished jobs are GC'd ``gc_threshold_s`` after
they end (then 404). Faults: :attr:`NomadStandIn.leader_lost`, :meth:`NomadStandIn.fail_next`,
:meth:`NomadStandIn.cut_streams`, :meth:`NomadStandIn.silence_streams`,
:meth:`NomadStandIn.outage` (stop listening, come back on the same port).

Re-registering a live job replaces its spec without replacing its allocations (the stand-in
does no rolling updates); re-registering a stopped job places it again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import json
import re
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.base import Attempt, RoutineSpec
from hrwsi.executors.nomad import NomadExecutor

_NS = 1_000_000_000
_ZERO_TIME = "0001-01-01T00:00:00Z"
_TERMINAL_CLIENT = {"complete", "failed", "lost"}
_MAX_PAYLOAD = 16384
_FAILURE_DETAIL = {
    "Driver Failure": "driver_error",
    "Setup Failure": "setup_error",
    "Failed Artifact Download": "download_error",
    "Failed Validation": "validation_error",
    "Task hook failed": "task_hook_error",
}


@dataclass(frozen=True, slots=True)
class Script:
    """What one allocation does once placed.

    ``failure`` (``"Driver Failure"``, ``"Setup Failure"``, …) fails it before it starts.
    Otherwise it starts after ``start_delay_s`` and, after ``run_s``: becomes ``lost``
    (``lost``), or ``unknown`` for ``unknown_s`` then lost (``unknown_then_lost``), or runs
    until stopped (``hang``), or terminates with ``exit_code`` (``oom``: killed by the kernel,
    exit 137).
    """

    exit_code: int = 0
    oom: bool = False
    failure: str | None = None
    failure_message: str = "failed to pull image: manifest unknown"
    lost: bool = False
    unknown_then_lost: bool = False
    unknown_s: float = 0.3
    hang: bool = False
    start_delay_s: float = 0.05
    run_s: float = 0.1


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Fault:
    status: int
    body: str
    path_contains: str | None
    remaining: int


@dataclass(slots=True)
class _Job:
    spec: dict[str, Any]
    create_index: int
    modify_index: int
    job_modify_index: int
    submit_time: int
    queued: dict[str, int] = field(default_factory=dict)
    blocked_evals: list[str] = field(default_factory=list)
    dead_since: float | None = None
    status: str = "pending"

    @property
    def id(self) -> str:
        return str(self.spec["ID"])

    @property
    def namespace(self) -> str:
        return str(self.spec["Namespace"])

    @property
    def parameterized(self) -> bool:
        return bool(self.spec.get("ParameterizedJob")) and not self.spec.get("Dispatched")


class _HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(body)


def _multierror(messages: Sequence[str]) -> str:
    head = "1 error occurred:" if len(messages) == 1 else f"{len(messages)} errors occurred:"
    return head + "".join(f"\n\t* {m}" for m in messages) + "\n\n"


def _parse_wait(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not match:
        raise _HttpError(400, "Invalid wait time")
    factor = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[match[2]]
    return min(float(match[1]) * factor, 600.0)


def _rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:09d}Z"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone (it runs in tests)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class NomadStandIn:
    """A simulated Nomad cluster served on ``127.0.0.1`` (see the module docstring)."""

    def __init__(
        self,
        *,
        nodes: Iterable[str] = ("vm-1",),
        drivers: Iterable[str] = ("docker", "exec", "raw_exec"),
        tokens: Iterable[str] | None = None,
        namespaces: Iterable[str] = ("default",),
        region: str = "global",
        heartbeat_s: float = 30.0,
        event_buffer: int = 1000,
        gc_threshold_s: float | None = None,
        scripts: Mapping[str, Script] | None = None,
        rule: Callable[[dict[str, Any]], Script | None] | None = None,
        port: int = 0,
    ) -> None:
        self._drivers = tuple(drivers)
        self.tokens = set(tokens) if tokens is not None else None
        self.namespaces = set(namespaces)
        self.region = region
        self.heartbeat_s = heartbeat_s
        self.gc_threshold_s = gc_threshold_s
        self.scripts: dict[str, Script] = dict(scripts or {})
        self.rule = rule
        self.leader_lost = False
        self.requests: list[RecordedRequest] = []
        self.received_jobs: list[dict[str, Any]] = []  # register bodies exactly as received
        self.runs_started: list[str] = []  # job ids, one entry per allocation placed
        self.variables: dict[tuple[str, str], dict[str, str]] = {}  # (namespace, path): items
        self._port = port
        self._index = 1
        self._tables: dict[str, int] = {}
        self._tick = asyncio.Event()
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._allocs: dict[str, dict[str, Any]] = {}
        self._evals: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._frames: deque[dict[str, Any]] = deque(maxlen=event_buffer)
        self._faults: list[_Fault] = []
        self._sims: dict[str, asyncio.Task[None]] = {}
        self._stream_generation = 0
        self._silenced_generation = -1
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._gc_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        for name in nodes:
            self.add_node(name)
        methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    async def __aenter__(self) -> NomadStandIn:
        await self.start_listening()
        self._gc_task = asyncio.create_task(self._gc_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
        for task in list(self._sims.values()):
            task.cancel()
        for task in list(self._sims.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stop_listening()

    async def start_listening(self) -> None:
        """Serve on the port (the same one again after :meth:`stop_listening`)."""
        if self._serve_task is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without it h11's separate header and body writes meet
        # Nagle and delayed ACKs, and every reply takes 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self._stopping = asyncio.Event()
        config = uvicorn.Config(
            self.app,
            log_level="critical",
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = _QuietServer(config)
        self._server = server
        self._serve_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._serve_task.done():
                self._serve_task.result()
            await asyncio.sleep(0.01)

    async def stop_listening(self) -> None:
        """Close the port and every open connection (event streams end); the cluster runs on."""
        if self._server is None or self._serve_task is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        await self._serve_task
        self._server = None
        self._serve_task = None

    async def outage(self, seconds: float) -> None:
        """Be unreachable for ``seconds`` (connections refused), then listen on the same port."""
        await self.stop_listening()
        await asyncio.sleep(seconds)
        await self.start_listening()

    # -- faults and scripting ----------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        body: str = "rpc error: EOF",
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (whose path contains the text) with this error."""
        self._faults.append(_Fault(status, body, path_contains, count))

    def cut_streams(self) -> None:
        """End every open event stream now (clients see the body end)."""
        self._stream_generation += 1

    def silence_streams(self) -> None:
        """Open event streams send nothing more, not even heartbeats, but stay open."""
        self._silenced_generation = self._stream_generation

    def add_node(self, name: str, *, drivers: Iterable[str] | None = None) -> None:
        """A node joins (blocked placements are retried)."""
        node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        driver_names = tuple(drivers) if drivers is not None else self._drivers
        self._nodes[node_id] = {
            "ID": node_id,
            "Name": name,
            "Address": "127.0.0.1",
            "Datacenter": "dc1",
            "NodePool": "default",
            "Status": "ready",
            "SchedulingEligibility": "eligible",
            "Drain": False,
            "Drivers": {d: {"Detected": True, "Healthy": True} for d in driver_names},
            "Attributes": {
                "unique.hostname": name,
                "kernel.name": "linux",
                "cpu.totalcompute": "16000",
                "memory.totalbytes": str(32 * 2**30),
                **{f"driver.{d}": "1" for d in driver_names},
            },
            "Meta": {},
            "NodeResources": {
                "Cpu": {"CpuShares": 16000, "TotalCpuCores": 8},
                "Memory": {"MemoryMB": 32768},
                "Disk": {"DiskMB": 100000},
            },
            "CreateIndex": self._index,
            "ModifyIndex": self._index,
        }
        self._write(["nodes"], [])
        self._unblock()

    def job(self, job_id: str, namespace: str = "default") -> dict[str, Any] | None:
        """The job as GET /v1/job would show it, or None."""
        job = self._jobs.get((namespace, job_id))
        return self._render_job(job) if job else None

    def allocations(self, job_id: str, namespace: str = "default") -> list[dict[str, Any]]:
        return self._job_allocs(namespace, job_id)

    def gc(self) -> None:
        """Collect every finished job now (as ``PUT /v1/system/gc``)."""
        self._collect(force=True)

    # -- raft-ish bookkeeping ----------------------------------------------------------------

    def _write(self, tables: Sequence[str], events: Sequence[dict[str, Any]]) -> int:
        self._index += 1
        for table in tables:
            self._tables[table] = self._index
        if events:
            for event in events:
                event["Index"] = self._index
            self._frames.append({"Index": self._index, "Events": list(events)})
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        return self._index

    async def _block(self, request: Request, table: str) -> int:
        raw_index = request.query_params.get("index")
        if raw_index is None:
            return self._tables.get(table, 1)
        try:
            index = int(raw_index)
        except ValueError:
            raise _HttpError(400, "Invalid index") from None
        wait = _parse_wait(request.query_params.get("wait", "5m"))
        deadline = time.monotonic() + wait
        while self._tables.get(table, 1) <= index:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick.wait(), min(remaining, 0.5))
        return self._tables.get(table, 1)

    # -- HTTP entry --------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                {k: request.query_params.getlist(k) for k in request.query_params},
                dict(request.headers),
                body,
            )
        )
        try:
            self._check_faults(request)
            return await self._route(request, body)
        except _HttpError as exc:
            return Response(
                exc.body, status_code=exc.status, media_type="text/plain; charset=utf-8"
            )

    def _check_faults(self, request: Request) -> None:
        if self.leader_lost:
            raise _HttpError(500, "No cluster leader")
        for fault in self._faults:
            if fault.remaining > 0 and (
                fault.path_contains is None or fault.path_contains in request.url.path
            ):
                fault.remaining -= 1
                raise _HttpError(fault.status, fault.body)
        if self.tokens is not None:
            token = request.headers.get("x-nomad-token", "")
            auth = request.headers.get("authorization", "")
            if not token and auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            if not token:
                raise _HttpError(403, "Permission denied")
            if token not in self.tokens:
                raise _HttpError(403, "ACL token not found")
        region = request.query_params.get("region")
        if region and region != self.region:
            raise _HttpError(500, "No path to region")

    async def _route(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        method = request.method
        ns = request.query_params.get("namespace") or "default"
        writes = ("PUT", "POST")
        if path == "/v1/jobs":
            if method in writes:
                return self._json(self._register(self._decode(body), ns, None))
            if method == "GET":
                index = await self._block(request, "jobs")
                prefix = request.query_params.get("prefix", "")
                jobs = [
                    self._job_stub(j)
                    for (jns, jid), j in sorted(self._jobs.items())
                    if jns == ns and jid.startswith(prefix)
                ]
                return self._json(jobs, index)
            raise _HttpError(405, "Invalid method")
        if path == "/v1/jobs/parse":
            if method not in writes:
                raise _HttpError(405, "Invalid method")
            return self._parse(self._decode(body))
        if path.startswith("/v1/job/"):
            return await self._job_route(request, path[len("/v1/job/") :], ns, body)
        if path.startswith("/v1/allocation/") and method == "GET":
            alloc_id = path[len("/v1/allocation/") :]
            index = await self._block(request, "allocs")
            if not re.fullmatch(
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", alloc_id
            ):
                raise _HttpError(500, f'rpc error: alloc lookup failed: Invalid UUID: "{alloc_id}"')
            alloc = self._allocs.get(alloc_id)
            if alloc is None:
                raise _HttpError(404, "alloc not found")
            return self._json(alloc, index)
        if path.startswith("/v1/evaluation/") and method == "GET":
            index = await self._block(request, "evals")
            evaluation = self._evals.get(path[len("/v1/evaluation/") :])
            if evaluation is None:
                raise _HttpError(404, "eval not found")
            return self._json(evaluation, index)
        if path == "/v1/nodes" and method == "GET":
            index = await self._block(request, "nodes")
            nodes = self._filter_nodes(request.query_params.get("filter"))
            with_resources = request.query_params.get("resources") == "true"
            stubs = [self._node_stub(n, with_resources) for n in nodes]
            return self._json(stubs, index)
        if path.startswith("/v1/node/") and method == "GET":
            index = await self._block(request, "nodes")
            node = self._nodes.get(path[len("/v1/node/") :])
            if node is None:
                raise _HttpError(404, "node not found")
            return self._json(node, index)
        if path.startswith("/v1/var/"):
            return self._variable(method, ns, path[len("/v1/var/") :], body)
        if path == "/v1/event/stream" and method == "GET":
            return self._stream(request, ns)
        if path == "/v1/system/gc" and method in writes:
            self._collect(force=True)
            return Response(b"", status_code=200)
        raise _HttpError(404, "Invalid URL")

    async def _job_route(self, request: Request, rest: str, ns: str, body: bytes) -> Response:
        method = request.method
        writes = ("PUT", "POST")
        if rest.endswith("/dispatch"):
            if method not in writes:
                raise _HttpError(405, "Invalid method")
            token = request.query_params.get("idempotency_token")
            return self._json(self._dispatch(rest[: -len("/dispatch")], ns, body, token))
        if rest.endswith("/summary"):
            index = await self._block(request, "job_summary")
            return self._json(self._summary(self._get_job(ns, rest[: -len("/summary")])), index)
        if rest.endswith("/allocations"):
            index = await self._block(request, "allocs")
            return self._json(self._job_allocs(ns, rest[: -len("/allocations")]), index)
        if method == "GET":
            index = await self._block(request, "jobs")
            return self._json(self._render_job(self._get_job(ns, rest)), index)
        if method in writes:
            return self._json(self._register(self._decode(body), ns, rest))
        if method == "DELETE":
            purge = request.query_params.get("purge") == "true"
            return self._json(self._deregister(ns, rest, purge))
        raise _HttpError(405, "Invalid method")

    def _json(self, value: Any, index: int | None = None) -> Response:
        headers = {"X-Nomad-Index": str(index if index is not None else self._index)}
        return Response(json.dumps(value), media_type="application/json", headers=headers)

    @staticmethod
    def _decode(body: bytes) -> Any:
        if not body:
            raise _HttpError(400, "Request body is empty")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _HttpError(400, f"Failed to decode request body: {exc}") from None

    def _get_job(self, ns: str, job_id: str) -> _Job:
        job = self._jobs.get((ns, job_id))
        if job is None:
            raise _HttpError(404, "job not found")
        return job

    def _variable(self, method: str, ns: str, var_path: str, body: bytes) -> Response:
        key = (ns, var_path)
        if method in ("PUT", "POST"):
            request = self._decode(body)
            items = request.get("Items") if isinstance(request, dict) else None
            if not isinstance(items, dict) or not items:
                raise _HttpError(400, "variable missing required Items object")
            self._write(["variables"], [])
            self.variables[key] = {str(k): str(v) for k, v in items.items()}
        elif method == "DELETE":
            self.variables.pop(key, None)
            self._write(["variables"], [])
            return Response(b"", status_code=200)
        elif method != "GET":
            raise _HttpError(405, "Invalid method")
        if key not in self.variables:
            raise _HttpError(404, "variable not found")
        variable = {"Namespace": ns, "Path": var_path, "Items": dict(self.variables[key])}
        return self._json(variable, self._tables.get("variables", 1))

    # -- register, parse, dispatch, deregister --------------------------------------------------

    def _parse(self, body: Any) -> Response:
        hcl = body.get("JobHCL", "") if isinstance(body, dict) else ""
        if not str(hcl).strip():
            raise _HttpError(400, "Job spec is empty")
        raise _HttpError(
            400, "Failed to parse job: the Nomad stand-in parses no HCL; register JSON instead"
        )

    def _register(self, body: Any, ns: str, path_id: str | None) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("Job"), dict):
            raise _HttpError(400, "Job must be specified")
        self.received_jobs.append(copy.deepcopy(body))
        spec = copy.deepcopy(body["Job"])
        if not spec.get("ID"):
            raise _HttpError(400, "Job ID hasn't been provided")
        if path_id is not None and spec["ID"] != path_id:
            raise _HttpError(400, "Job ID does not match name")
        spec.setdefault("Namespace", ns)
        if not spec.get("Namespace"):
            spec["Namespace"] = ns
        self._canonicalize(spec)
        problems = self._validate(spec)
        if problems:
            raise _HttpError(500, _multierror(problems))
        if spec["Namespace"] not in self.namespaces:
            raise _HttpError(
                500, f'job "{spec["ID"]}" is in nonexistent namespace "{spec["Namespace"]}"'
            )
        key = (spec["Namespace"], spec["ID"])
        existing = self._jobs.get(key)
        if body.get("EnforceIndex"):
            wanted = int(body.get("JobModifyIndex") or 0)
            if wanted == 0 and existing is not None:
                raise _HttpError(500, "Enforcing job modify index 0: job already exists")
            if wanted != 0 and existing is None:
                raise _HttpError(500, f"Enforcing job modify index {wanted}: job does not exist")
            if existing is not None and wanted != existing.job_modify_index:
                raise _HttpError(
                    500,
                    f"Enforcing job modify index {wanted}: job exists with conflicting "
                    f"job modify index: {existing.job_modify_index}",
                )
        was_stopped = existing is not None and bool(existing.spec.get("Stop"))
        now = time.time_ns()
        index = self._index + 1
        if existing is None:
            job = _Job(spec, index, index, index, now)
            spec["Version"] = 0
            self._jobs[key] = job
        else:
            job = existing
            spec["Version"] = int(existing.spec.get("Version", 0)) + 1
            job.spec = spec
            job.modify_index = job.job_modify_index = index
            job.submit_time = now
            job.dead_since = None
        self._write(
            ["jobs", "job_summary"],
            [self._event("Job", "JobRegistered", job.id, [job.id], {"Job": self._render_job(job)})],
        )
        eval_id, eval_index = "", 0
        if not job.parameterized and (existing is None or was_stopped):
            evaluation = self._evaluate(job, "job-register")
            eval_id, eval_index = evaluation["ID"], evaluation["CreateIndex"]
        return {
            "EvalID": eval_id,
            "EvalCreateIndex": eval_index,
            "JobModifyIndex": job.job_modify_index,
            "Warnings": "",
            "Index": self._index,
            "LastContact": 0,
            "KnownLeader": False,
            "NextToken": "",
        }

    @staticmethod
    def _canonicalize(spec: dict[str, Any]) -> None:
        spec.setdefault("Name", spec["ID"])
        if not spec.get("Type"):
            spec["Type"] = "service"
        spec.setdefault("Priority", 50)
        spec.setdefault("Region", "global")
        if not spec.get("Datacenters"):
            spec["Datacenters"] = ["*"]
        spec.setdefault("Stop", False)
        spec.setdefault("Meta", {})
        spec.setdefault("Constraints", [])
        spec.setdefault("Dispatched", False)
        spec.setdefault("ParentID", "")
        batch = spec["Type"] in ("batch", "sysbatch")
        restart = (
            {"Attempts": 3, "Interval": 24 * 3600 * _NS, "Delay": 15 * _NS, "Mode": "fail"}
            if batch
            else {"Attempts": 2, "Interval": 30 * 60 * _NS, "Delay": 15 * _NS, "Mode": "fail"}
        )
        reschedule = (
            {
                "Attempts": 1,
                "Interval": 24 * 3600 * _NS,
                "Delay": 5 * _NS,
                "DelayFunction": "constant",
                "MaxDelay": 0,
                "Unlimited": False,
            }
            if batch
            else {
                "Attempts": 0,
                "Interval": 0,
                "Delay": 30 * _NS,
                "DelayFunction": "exponential",
                "MaxDelay": 3600 * _NS,
                "Unlimited": True,
            }
        )
        for group in spec.get("TaskGroups") or []:
            if group.get("Count") is None:
                group["Count"] = 1
            group["RestartPolicy"] = {**restart, **(group.get("RestartPolicy") or {})}
            group["ReschedulePolicy"] = {**reschedule, **(group.get("ReschedulePolicy") or {})}
            disk = {"SizeMB": 300, "Sticky": False, "Migrate": False}
            group["EphemeralDisk"] = {**disk, **(group.get("EphemeralDisk") or {})}
            group.setdefault("Constraints", [])
            for task in group.get("Tasks") or []:
                resources = dict(task.get("Resources") or {})
                resources.pop("DiskMB", None)  # silently dropped, as by Nomad
                if not resources.get("Cores") and resources.get("CPU") is None:
                    resources["CPU"] = 100
                if resources.get("MemoryMB") is None:
                    resources["MemoryMB"] = 300
                task["Resources"] = resources
                task.setdefault("Constraints", [])
                task.setdefault("Env", {})
                task.setdefault("Meta", {})

    @staticmethod
    def _validate(spec: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        job_id = str(spec["ID"])
        if " " in job_id:
            problems.append("Job ID contains a space")
        if spec["Type"] not in ("service", "batch", "system", "sysbatch"):
            problems.append(f"Invalid job type: {spec['Type']!r}")
        if not 1 <= int(spec.get("Priority", 50)) <= 100:
            problems.append("Job priority must be between [1, 100]")
        if spec.get("ParameterizedJob") and spec["Type"] not in ("batch", "sysbatch"):
            problems.append('Parameterized job can only be used with "batch" or "sysbatch" type')
        groups = spec.get("TaskGroups") or []
        if not groups:
            problems.append("Missing job task groups")
        for g, group in enumerate(groups, 1):
            name = group.get("Name")
            if not name:
                problems.append(f"Job task group {g} missing name")
                continue
            tasks = group.get("Tasks") or []
            if not tasks:
                problems.append(
                    f"Task group {name} validation failed: Missing tasks for task group"
                )
            if int(group.get("Count", 1)) < 0:
                problems.append(
                    f"Task group {name} validation failed: Task group count can't be negative"
                )
            for t, task in enumerate(tasks, 1):
                tname = task.get("Name") or f"{t}"
                where = f"Task group {name} validation failed: Task {tname} validation failed"
                if not task.get("Name"):
                    problems.append(f"{where}: Missing task name")
                if not task.get("Driver"):
                    problems.append(f"{where}: Missing task driver")
                res = task["Resources"]
                if res.get("Cores") and res.get("CPU"):
                    problems.append(
                        f"{where}: Task can only ask for 'cpu' or 'cores' resource, not both."
                    )
                if int(res.get("MemoryMB") or 0) < 10:
                    problems.append(
                        f"{where}: minimum MemoryMB value is 10; got {res.get('MemoryMB')}"
                    )
                if not res.get("Cores") and int(res.get("CPU") or 0) < 1:
                    problems.append(f"{where}: minimum CPU value is 1; got {res.get('CPU')}")
        return problems

    def _dispatch(self, parent_id: str, ns: str, body: bytes, token: str | None) -> dict[str, Any]:
        request = self._decode(body)
        if not isinstance(request, dict):
            raise _HttpError(400, "Request body is empty")
        token = token or request.get("IdempotencyToken") or None
        parent = self._jobs.get((ns, parent_id))
        if parent is None:
            raise _HttpError(500, "parameterized job not found")
        if not parent.parameterized:
            raise _HttpError(500, f'Specified job "{parent_id}" is not a parameterized job')
        if parent.spec.get("Stop"):
            raise _HttpError(500, f'Specified job "{parent_id}" is stopped')
        if token:
            for child in self._jobs.values():
                if (
                    child.spec.get("ParentID") == parent_id
                    and child.namespace == ns
                    and child.spec.get("DispatchIdempotencyToken") == token
                ):
                    return {
                        "DispatchedJobID": child.id,
                        "EvalID": "",
                        "EvalCreateIndex": 0,
                        "JobCreateIndex": child.create_index,
                        "Index": self._index,
                    }
        params = parent.spec["ParameterizedJob"]
        payload_b64 = request.get("Payload") or ""
        payload = base64.b64decode(payload_b64) if payload_b64 else b""
        mode = params.get("Payload") or "optional"
        if mode == "required" and not payload:
            raise _HttpError(500, "Payload is not provided but required by parameterized job")
        if mode == "forbidden" and payload:
            raise _HttpError(500, "Payload provided but forbidden by parameterized job")
        if len(payload) > _MAX_PAYLOAD:
            raise _HttpError(500, f"Payload exceeds maximum size; {len(payload)} > {_MAX_PAYLOAD}")
        meta = dict(request.get("Meta") or {})
        required = list(params.get("MetaRequired") or [])
        allowed = set(required) | set(params.get("MetaOptional") or [])
        extra = sorted(k for k in meta if k not in allowed)
        if extra:
            raise _HttpError(500, f"Dispatch request included unpermitted metadata keys: {extra}")
        missing = [k for k in required if k not in meta]
        if missing:
            raise _HttpError(500, f"Dispatch did not provide required meta keys: {missing}")
        prefix = request.get("IdPrefixTemplate") or ""
        child_id = (
            f"{parent_id}/dispatch-{prefix + '-' if prefix else ''}"
            f"{int(time.time())}-{secrets.token_hex(4)}"
        )
        spec = copy.deepcopy(parent.spec)
        spec.pop("ParameterizedJob", None)
        spec.update(
            ID=child_id,
            Name=child_id,
            ParentID=parent_id,
            Dispatched=True,
            DispatchIdempotencyToken=token or "",
            Meta={**(parent.spec.get("Meta") or {}), **meta},
            Payload=payload_b64,
            Version=0,
        )
        index = self._index + 1
        child = _Job(spec, index, index, index, time.time_ns())
        self._jobs[(ns, child_id)] = child
        self._write(
            ["jobs", "job_summary"],
            [
                self._event(
                    "Job", "JobRegistered", child_id, [child_id], {"Job": self._render_job(child)}
                )
            ],
        )
        evaluation = self._evaluate(child, "job-register")
        return {
            "DispatchedJobID": child_id,
            "EvalID": evaluation["ID"],
            "EvalCreateIndex": evaluation["CreateIndex"],
            "JobCreateIndex": child.create_index,
            "Index": self._index,
        }

    def _deregister(self, ns: str, job_id: str, purge: bool) -> dict[str, Any]:
        job = self._jobs.get((ns, job_id))
        if job is None:
            return {
                "EvalID": "",
                "EvalCreateIndex": 0,
                "JobModifyIndex": 0,
                "VolumeEvalID": "",
                "VolumeEvalIndex": 0,
                "Index": 0,
                "LastContact": 0,
                "KnownLeader": False,
                "NextToken": "",
            }
        job.spec["Stop"] = True
        job.queued = {}
        for blocked in job.blocked_evals:
            if blocked in self._evals:
                self._evals[blocked]["Status"] = "canceled"
        job.blocked_evals = []
        for alloc in self._job_allocs(ns, job_id):
            self._stop_alloc(alloc["ID"], "alloc not needed due to job update")
        job.modify_index = job.job_modify_index = self._index + 1
        evaluation = self._new_eval(job, "job-deregister")
        if purge:
            self._remove_job(job)
        self._write(
            ["jobs", "job_summary", "evals", "allocs"],
            [
                self._event(
                    "Job", "JobDeregistered", job_id, [job_id], {"Job": self._render_job(job)}
                )
            ],
        )
        self._refresh(job)
        return {
            "EvalID": evaluation["ID"],
            "EvalCreateIndex": evaluation["CreateIndex"],
            "JobModifyIndex": job.job_modify_index,
            "VolumeEvalID": "",
            "VolumeEvalIndex": 0,
            "Index": self._index,
            "LastContact": 0,
            "KnownLeader": False,
            "NextToken": "",
        }

    def _remove_job(self, job: _Job) -> None:
        self._jobs.pop((job.namespace, job.id), None)
        for alloc_id in [
            a
            for a, v in self._allocs.items()
            if v["JobID"] == job.id and v["Namespace"] == job.namespace
        ]:
            task = self._sims.pop(alloc_id, None)
            if task is not None:
                task.cancel()
            self._allocs.pop(alloc_id, None)
        for eval_id in [
            e
            for e, v in self._evals.items()
            if v["JobID"] == job.id and v["Namespace"] == job.namespace
        ]:
            self._evals.pop(eval_id, None)

    # -- scheduling ------------------------------------------------------------------------------

    def _new_eval(self, job: _Job, trigger: str, status: str = "complete") -> dict[str, Any]:
        now = time.time_ns()
        evaluation = {
            "ID": str(uuid.uuid4()),
            "Namespace": job.namespace,
            "Priority": job.spec.get("Priority", 50),
            "Type": job.spec["Type"],
            "TriggeredBy": trigger,
            "JobID": job.id,
            "Status": status,
            "StatusDescription": "",
            "BlockedEval": "",
            "FailedTGAllocs": None,
            "QueuedAllocations": {},
            "CreateIndex": self._index + 1,
            "ModifyIndex": self._index + 1,
            "CreateTime": now,
            "ModifyTime": now,
        }
        self._evals[evaluation["ID"]] = evaluation
        return evaluation

    def _evaluate(self, job: _Job, trigger: str) -> dict[str, Any]:
        evaluation = self._new_eval(job, trigger)
        events = [
            self._event(
                "Evaluation",
                "EvaluationUpdated",
                evaluation["ID"],
                [job.id, ""],
                {"Evaluation": evaluation},
            )
        ]
        failed: dict[str, Any] = {}
        for group in job.spec["TaskGroups"]:
            tg = group["Name"]
            for _ in range(int(group["Count"])):
                node, metrics = self._place(job, group)
                if node is None:
                    job.queued[tg] = job.queued.get(tg, 0) + 1
                    failed[tg] = metrics
                    continue
                alloc = self._new_alloc(job, group, node, evaluation["ID"])
                events.append(self._alloc_event("PlanResult", alloc))
        if failed:
            blocked = self._new_eval(job, "queued-allocs", status="blocked")
            blocked["StatusDescription"] = "created to place remaining allocations"
            job.blocked_evals.append(blocked["ID"])
            evaluation["BlockedEval"] = blocked["ID"]
            evaluation["FailedTGAllocs"] = failed
            evaluation["QueuedAllocations"] = dict(job.queued)
        self._write(["evals", "allocs", "jobs", "job_summary"], events)
        self._refresh(job)
        return evaluation

    def _place(
        self, job: _Job, group: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        constraints = [
            *job.spec.get("Constraints", []),
            *group.get("Constraints", []),
            *[c for task in group["Tasks"] for c in task.get("Constraints", [])],
        ]
        drivers = {task["Driver"] for task in group["Tasks"]}
        nodes = sorted(
            (n for n in self._nodes.values() if n["Status"] == "ready"), key=lambda n: n["Name"]
        )
        filtered: dict[str, int] = {}
        missing_drivers = 0
        for node in nodes:
            if any(not node["Drivers"].get(d, {}).get("Healthy") for d in drivers):
                missing_drivers += 1
                continue
            bad = next((c for c in constraints if not self._satisfies(node, c)), None)
            if bad is not None:
                label = (
                    f"{bad.get('LTarget', '')} {bad.get('Operand', '=')} {bad.get('RTarget', '')}"
                )
                filtered[label] = filtered.get(label, 0) + 1
                continue
            return node, {}
        metrics = {
            "NodesEvaluated": len(nodes),
            "NodesFiltered": len(nodes),
            "NodesAvailable": {"dc1": len(nodes)},
            "ClassFiltered": None,
            "ConstraintFiltered": filtered or None,
            "NodesExhausted": 0,
            "ClassExhausted": None,
            "DimensionExhausted": None,
            "QuotaExhausted": None,
            "CoalescedFailures": 0,
        }
        if missing_drivers:
            metrics["ConstraintFiltered"] = {**(filtered or {}), "missing drivers": missing_drivers}
        return None, metrics

    @staticmethod
    def _satisfies(node: dict[str, Any], constraint: Mapping[str, Any]) -> bool:
        def resolve(target: str) -> str | None:
            match = re.fullmatch(r"\$\{(attr|node|meta)\.(.+)\}", target or "")
            if not match:
                return target
            kind, name = match[1], match[2]
            if kind == "attr":
                value = node["Attributes"].get(name)
                return None if value is None else str(value)
            if kind == "meta":
                value = node["Meta"].get(name)
                return None if value is None else str(value)
            return {
                "unique.name": node["Name"],
                "unique.id": node["ID"],
                "datacenter": node["Datacenter"],
            }.get(name)

        left = resolve(str(constraint.get("LTarget", "")))
        right = resolve(str(constraint.get("RTarget", "")))
        operand = constraint.get("Operand") or "="
        if operand in ("=", "==", "is"):
            return left is not None and left == right
        if operand in ("!=", "not"):
            return left != right
        if operand == "regexp":
            return left is not None and re.search(right or "", left) is not None
        return True  # other operands are not simulated

    def _unblock(self) -> None:
        for job in list(self._jobs.values()):
            if not job.queued or job.spec.get("Stop"):
                continue
            events = []
            for group in job.spec["TaskGroups"]:
                tg = group["Name"]
                while job.queued.get(tg, 0) > 0:
                    node, _ = self._place(job, group)
                    if node is None:
                        break
                    job.queued[tg] -= 1
                    eval_id = job.blocked_evals[-1] if job.blocked_evals else ""
                    events.append(
                        self._alloc_event("PlanResult", self._new_alloc(job, group, node, eval_id))
                    )
            if not any(job.queued.values()):
                job.queued = {}
                for blocked in job.blocked_evals:
                    self._evals[blocked]["Status"] = "complete"
                job.blocked_evals = []
            if events:
                self._write(["allocs", "evals", "jobs", "job_summary"], events)
                self._refresh(job)

    def _script_for(self, job: _Job) -> Script:
        script = self.scripts.get(job.id)
        if script is None and self.rule is not None:
            script = self.rule(self._render_job(job))
        return script or Script()

    def _new_alloc(
        self, job: _Job, group: dict[str, Any], node: dict[str, Any], eval_id: str
    ) -> dict[str, Any]:
        now = time.time_ns()
        alloc_id = str(uuid.uuid4())
        index = self._index + 1
        alloc = {
            "ID": alloc_id,
            "EvalID": eval_id,
            "Name": f"{job.id}.{group['Name']}[0]",
            "Namespace": job.namespace,
            "NodeID": node["ID"],
            "NodeName": node["Name"],
            "JobID": job.id,
            "JobVersion": job.spec.get("Version", 0),
            "TaskGroup": group["Name"],
            "DesiredStatus": "run",
            "DesiredDescription": "",
            "ClientStatus": "pending",
            "ClientDescription": "",
            "TaskStates": {
                task["Name"]: {
                    "State": "pending",
                    "Failed": False,
                    "Restarts": 0,
                    "StartedAt": None,
                    "FinishedAt": None,
                    "Events": [self._task_event("Received", "Task received by client")],
                }
                for task in group["Tasks"]
            },
            "NextAllocation": "",
            "CreateIndex": index,
            "ModifyIndex": index,
            "CreateTime": now,
            "ModifyTime": now,
        }
        self._allocs[alloc_id] = alloc
        self.runs_started.append(job.id)
        self._sims[alloc_id] = asyncio.create_task(self._simulate(alloc_id, self._script_for(job)))
        return alloc

    # -- allocation life --------------------------------------------------------------------------

    @staticmethod
    def _task_event(
        kind: str, message: str = "", details: Mapping[str, str] | None = None, **flat: Any
    ) -> dict[str, Any]:
        return {
            "Type": kind,
            "Time": time.time_ns(),
            "DisplayMessage": message,
            "Details": dict(details or {}),
            **flat,
        }

    def _update_alloc(self, alloc: dict[str, Any], kind: str = "AllocationUpdated") -> None:
        now = time.time_ns()
        alloc["ModifyTime"] = now
        alloc["ModifyIndex"] = self._index + 1
        for state in alloc["TaskStates"].values():
            state["Events"] = state["Events"][-10:]
        self._write(["allocs", "jobs", "job_summary"], [self._alloc_event(kind, alloc)])
        job = self._jobs.get((alloc["Namespace"], alloc["JobID"]))
        if job is not None:
            self._refresh(job)

    def _tasks(self, alloc: dict[str, Any]) -> list[dict[str, Any]]:
        return list(alloc["TaskStates"].values())

    async def _simulate(self, alloc_id: str, script: Script) -> None:
        try:
            await self._play(alloc_id, script)
        finally:
            if self._sims.get(alloc_id) is asyncio.current_task():
                del self._sims[alloc_id]

    async def _play(self, alloc_id: str, script: Script) -> None:
        await asyncio.sleep(script.start_delay_s)
        alloc = self._allocs.get(alloc_id)
        if alloc is None or alloc["DesiredStatus"] != "run":
            return
        for state in self._tasks(alloc):
            state["Events"].append(self._task_event("Task Setup", "Building Task Directory"))
        if script.failure:
            key = _FAILURE_DETAIL.get(script.failure, "error")
            for state in self._tasks(alloc):
                state["Events"].append(
                    self._task_event(
                        script.failure,
                        script.failure_message,
                        {key: script.failure_message, "fails_task": "true"},
                        FailsTask=True,
                    )
                )
                state["Events"].append(
                    self._task_event(
                        "Not Restarting",
                        "Error was unrecoverable",
                        {"fails_task": "true", "restart_reason": "Error was unrecoverable"},
                        FailsTask=True,
                    )
                )
                state.update(State="dead", Failed=True, FinishedAt=_rfc3339(time.time_ns()))
            alloc.update(ClientStatus="failed", ClientDescription="Failed tasks")
            self._update_alloc(alloc)
            return
        started = _rfc3339(time.time_ns())
        for state in self._tasks(alloc):
            state["Events"].append(self._task_event("Driver", "Downloading image"))
            state["Events"].append(self._task_event("Started", "Task started by client"))
            state.update(State="running", StartedAt=started)
        alloc.update(ClientStatus="running", ClientDescription="Tasks are running")
        self._update_alloc(alloc)
        if script.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(script.run_s)
        if script.lost or script.unknown_then_lost:
            if script.unknown_then_lost:
                alloc.update(
                    ClientStatus="unknown",
                    ClientDescription="alloc is unknown since its node is disconnected",
                )
                self._update_alloc(alloc, "PlanResult")
                await asyncio.sleep(script.unknown_s)
            alloc.update(
                ClientStatus="lost",
                DesiredStatus="stop",
                DesiredDescription="alloc is lost since its node is down",
                ClientDescription="alloc is lost since its node is down",
            )
            self._update_alloc(alloc, "PlanResult")
            return
        exit_code = 137 if script.oom else script.exit_code
        failed = exit_code != 0 or script.oom
        details = {
            "exit_code": str(exit_code),
            "signal": "9" if script.oom else "0",
            "oom_killed": "true" if script.oom else "false",
        }
        for state in self._tasks(alloc):
            state["Events"].append(
                self._task_event(
                    "Terminated",
                    f"Exit Code: {exit_code}" + (", OOM Killed" if script.oom else ""),
                    details,
                    ExitCode=exit_code,
                )
            )
            if failed:
                state["Events"].append(
                    self._task_event(
                        "Not Restarting",
                        "Policy allows no restarts",
                        {"fails_task": "true", "restart_reason": "Policy allows no restarts"},
                        FailsTask=True,
                    )
                )
            state.update(State="dead", Failed=failed, FinishedAt=_rfc3339(time.time_ns()))
        alloc.update(
            ClientStatus="failed" if failed else "complete",
            ClientDescription="Failed tasks" if failed else "All tasks have completed",
        )
        self._update_alloc(alloc)

    def _stop_alloc(self, alloc_id: str, why: str) -> None:
        alloc = self._allocs[alloc_id]
        if alloc["ClientStatus"] in _TERMINAL_CLIENT:
            return  # finished allocations are left as they are
        task = self._sims.pop(alloc_id, None)
        if task is not None:
            task.cancel()
        alloc.update(DesiredStatus="stop", DesiredDescription=why)
        for state in self._tasks(alloc):
            if state["State"] == "running":
                state["Events"].append(
                    self._task_event("Killing", "Sent interrupt", {"kill_timeout": "5s"})
                )
                # The routine handled the interrupt and exited 0: still a cancellation.
                details = {"exit_code": "0", "signal": "2", "oom_killed": "false"}
                state["Events"].append(
                    self._task_event("Terminated", "Exit Code: 0", details, ExitCode=0)
                )
                state["Events"].append(self._task_event("Killed", "Task successfully killed"))
            state.update(State="dead", Failed=False, FinishedAt=_rfc3339(time.time_ns()))
        alloc.update(ClientStatus="complete", ClientDescription="All tasks have completed")
        self._update_alloc(alloc)

    # -- reads -------------------------------------------------------------------------------------

    def _job_allocs(self, ns: str, job_id: str) -> list[dict[str, Any]]:
        return sorted(
            (
                copy.deepcopy(a)
                for a in self._allocs.values()
                if a["JobID"] == job_id and a["Namespace"] == ns
            ),
            key=lambda a: a["CreateIndex"],
        )

    def _refresh(self, job: _Job) -> None:
        """Derive the job's status from its allocations, as the state store does."""
        allocs = [
            a
            for a in self._allocs.values()
            if a["JobID"] == job.id and a["Namespace"] == job.namespace
        ]
        if job.parameterized:
            status = "dead" if job.spec.get("Stop") else "running"
        elif any(a["ClientStatus"] not in _TERMINAL_CLIENT for a in allocs):
            status = "running"
        elif any(job.queued.values()) and not job.spec.get("Stop"):
            status = "pending"
        else:
            status = "dead"
        if status != job.status:
            job.status = status
            job.modify_index = self._index
        if status == "dead" and job.dead_since is None:
            job.dead_since = time.monotonic()
        elif status != "dead":
            job.dead_since = None

    def _render_job(self, job: _Job) -> dict[str, Any]:
        rendered = copy.deepcopy(job.spec)
        rendered.update(
            Status=job.status,
            StatusDescription="",
            CreateIndex=job.create_index,
            ModifyIndex=job.modify_index,
            JobModifyIndex=job.job_modify_index,
            SubmitTime=job.submit_time,
        )
        return rendered

    def _job_stub(self, job: _Job) -> dict[str, Any]:
        keys = ("ID", "ParentID", "Name", "Namespace", "Datacenters", "Type", "Priority", "Stop")
        stub = {k: job.spec.get(k) for k in keys}
        stub.update(
            Periodic=False,
            ParameterizedJob=job.parameterized,
            Status=job.status,
            StatusDescription="",
            JobSummary=self._summary(job),
            CreateIndex=job.create_index,
            ModifyIndex=job.modify_index,
            JobModifyIndex=job.job_modify_index,
            SubmitTime=job.submit_time,
        )
        return stub

    def _summary(self, job: _Job) -> dict[str, Any]:
        summary: dict[str, dict[str, int]] = {}
        for group in job.spec["TaskGroups"]:
            summary[group["Name"]] = {
                k: 0
                for k in ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown")
            }
            summary[group["Name"]]["Queued"] = job.queued.get(group["Name"], 0)
        column = {
            "complete": "Complete",
            "failed": "Failed",
            "running": "Running",
            "pending": "Starting",
            "lost": "Lost",
            "unknown": "Unknown",
        }
        for alloc in self._allocs.values():
            if (
                alloc["JobID"] == job.id
                and alloc["Namespace"] == job.namespace
                and alloc["TaskGroup"] in summary
            ):
                summary[alloc["TaskGroup"]][column[alloc["ClientStatus"]]] += 1
        children = {"Pending": 0, "Running": 0, "Dead": 0}
        for child in self._jobs.values():
            if child.spec.get("ParentID") == job.id and child.namespace == job.namespace:
                children[child.status.capitalize()] = children.get(child.status.capitalize(), 0) + 1
        return {
            "JobID": job.id,
            "Namespace": job.namespace,
            "Summary": summary,
            "Children": children,
            "CreateIndex": job.create_index,
            "ModifyIndex": job.modify_index,
        }

    def _filter_nodes(self, expression: str | None) -> list[dict[str, Any]]:
        nodes = sorted(self._nodes.values(), key=lambda n: n["Name"])
        if not expression:
            return nodes
        match = re.fullmatch(r'\s*(Name|Attributes\["([^"]+)"\])\s*==\s*"([^"]*)"\s*', expression)
        if not match:
            raise _HttpError(
                400, f"failed to read filter expression: unsupported by the stand-in: {expression}"
            )
        if match[1] == "Name":
            return [n for n in nodes if n["Name"] == match[3]]
        return [n for n in nodes if n["Attributes"].get(match[2]) == match[3]]

    @staticmethod
    def _node_stub(node: dict[str, Any], with_resources: bool) -> dict[str, Any]:
        keys = (
            "ID",
            "Name",
            "Address",
            "Datacenter",
            "NodePool",
            "Status",
            "SchedulingEligibility",
            "Drain",
            "Drivers",
            "CreateIndex",
            "ModifyIndex",
        )
        stub = {k: node[k] for k in keys}
        if with_resources:
            stub["NodeResources"] = node["NodeResources"]
        return stub

    # -- events ------------------------------------------------------------------------------------

    @staticmethod
    def _event(
        topic: str, kind: str, key: str, filter_keys: list[str], payload: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "Topic": topic,
            "Type": kind,
            "Key": key,
            "Namespace": "default",
            "FilterKeys": filter_keys,
            "Index": 0,
            "Payload": payload,
        }

    def _alloc_event(self, kind: str, alloc: dict[str, Any]) -> dict[str, Any]:
        payload = {"Allocation": {**copy.deepcopy(alloc), "Job": None}}
        event = self._event("Allocation", kind, alloc["ID"], [alloc["JobID"], ""], payload)
        event["Namespace"] = alloc["Namespace"]
        return event

    @staticmethod
    def _wanted(topics: list[tuple[str, str]], event: Mapping[str, Any]) -> bool:
        for topic, key in topics:
            if topic not in ("*", event["Topic"]):
                continue
            if key == "*" or key == event["Key"] or key in event.get("FilterKeys", []):
                return True
        return False

    def _stream(self, request: Request, ns: str) -> Response:
        try:
            start = int(request.query_params.get("index", "0"))
        except ValueError:
            raise _HttpError(400, "Invalid index") from None
        topics = []
        for raw in request.query_params.getlist("topic"):
            topic, _, key = raw.partition(":")
            topics.append((topic, key or "*"))
        if not topics:
            topics = [("*", "*")]
        generation = self._stream_generation
        stopping = self._stopping

        async def body() -> AsyncIterator[bytes]:
            sent = start - 1
            yield b"{}\n"
            last_beat = time.monotonic()
            while True:
                if stopping.is_set() or self._stream_generation != generation:
                    return
                silenced = self._silenced_generation == generation
                tick = self._tick
                if not silenced:
                    for frame in list(self._frames):
                        if frame["Index"] <= sent:
                            continue
                        sent = frame["Index"]
                        events = [
                            e
                            for e in frame["Events"]
                            if self._wanted(topics, e) and e.get("Namespace", ns) == ns
                        ]
                        if events:
                            yield (
                                json.dumps({"Index": frame["Index"], "Events": events}) + "\n"
                            ).encode()
                    if time.monotonic() - last_beat >= self.heartbeat_s:
                        yield b"{}\n"
                        last_beat = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), min(self.heartbeat_s, 0.2))

        return StreamingResponse(body(), media_type="application/json")

    # -- garbage collection ---------------------------------------------------------------

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.1, (self.gc_threshold_s or 1.0) / 4))
            if self.gc_threshold_s is not None:
                self._collect(force=False)

    def _collect(self, *, force: bool) -> None:
        now = time.monotonic()
        collected = False
        for job in list(self._jobs.values()):
            if job.parameterized and not job.spec.get("Stop"):
                continue
            if job.status != "dead" or job.dead_since is None:
                continue
            if force or (
                self.gc_threshold_s is not None and now - job.dead_since >= self.gc_threshold_s
            ):
                self._remove_job(job)
                collected = True
        if collected:
            self._write(["jobs", "job_summary", "allocs", "evals"], [])


class ContractHarness:
    """The Nomad executor on a fresh stand-in, for ``tests/integration/test_executor_contract``.

    ``async with ContractHarness(tmp_path) as executor``; ``attempt(task_id, behaviour)`` makes
    an attempt whose job will ``"succeed"``, ``"fail"`` (exit 4) or ``"hang"``.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.nomad = NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2)
        self.executor: NomadExecutor | None = None

    async def __aenter__(self) -> NomadExecutor:
        await self.nomad.__aenter__()
        settings = NomadExecutorConfig(
            address=self.nomad.address,
            sweep_interval_s=0.5,
            placement_timeout_s=5.0,
            request_timeout_s=5.0,
            event_silence_s=2.0,
            backoff_initial_s=0.0,
            backoff_max_s=0.0,
        )
        self.executor = NomadExecutor(settings)
        return self.executor

    async def __aexit__(self, *exc: object) -> None:
        if self.executor is not None:
            await self.executor.aclose()
        await self.nomad.__aexit__(*exc)

    def attempt(self, task_id: int, behaviour: str) -> Attempt:
        routine = RoutineSpec("R", 1, 1, 1, 1, docker_image="busybox:1")
        attempt = Attempt(task_id, 1, routine, "vm-1", ("/in/x",), "/HRWSI/L2A/PC/T/x")
        scripts = {"succeed": Script(), "fail": Script(exit_code=4), "hang": Script(hang=True)}
        job_id = (
            "hrwsi-" + attempt.key if self.executor is None else self.executor.job_id(attempt.key)
        )
        self.nomad.scripts[job_id] = scripts[behaviour]
        return attempt


async def _serve_forever(server: NomadStandIn) -> None:
    async with server:
        print(f"nomad stand-in: {server.address}", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hrwsi.testing.nomad_server --port 4646 --nodes vm-1 vm-2``: serve forever.

    Every job succeeds after ``--run-s`` seconds (the routine does not really run: no
    product file is written), which is enough to watch the launcher's status trail.
    """
    parser = argparse.ArgumentParser(description="Serve the Nomad HTTP API stand-in.")
    parser.add_argument("--port", type=int, default=4646)
    parser.add_argument("--nodes", nargs="*", default=["vm-1"], help="node (VM) names")
    parser.add_argument("--token", action="append", help="accepted ACL token (repeatable)")
    parser.add_argument("--run-s", type=float, default=2.0, help="how long each run lasts")
    parser.add_argument("--gc-s", type=float, default=None, help="GC threshold in seconds")
    args = parser.parse_args(argv)
    server = NomadStandIn(
        nodes=args.nodes,
        tokens=args.token,
        port=args.port,
        gc_threshold_s=args.gc_s,
        rule=lambda job: Script(run_s=args.run_s),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))


if __name__ == "__main__":
    main()
