"""The cluster state every API area reads and writes, and its raft-ish bookkeeping.

One index counts every write; each table remembers the index of its last write, so
blocking queries (``index``/``wait``) hang until their table moves; every write may carry
event-stream frames. Job status is derived from the allocations as the state store does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from hrwsi.testing.nomad_server.common import (
    _TERMINAL_CLIENT,
    RecordedRequest,
    Script,
    _Fault,
    _HttpError,
    _Job,
    _parse_wait,
)


class ClusterCore:
    """State and bookkeeping shared by the API areas (mixins) of the stand-in."""

    def __init__(
        self,
        *,
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
        variables_api: bool = True,
        replace_lost_always: bool = False,
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
        # job id -> how many of its allocations started running (the routine executed)
        self.executions: Counter[str] = Counter()
        # False: a cluster without the variables API (Nomad < 1.4): /v1/var* is not routed
        self.variables_api = variables_api
        # True: plays Nomad < 1.7.2, which knows neither field that forbids replacing lost
        # allocations (it ignores them, as it ignores every unknown field)
        self.replace_lost_always = replace_lost_always
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

    def job(self, job_id: str, namespace: str = "default") -> dict[str, Any] | None:
        """The job as GET /v1/job would show it, or None."""
        job = self._jobs.get((namespace, job_id))
        return self._render_job(job) if job else None

    def allocations(self, job_id: str, namespace: str = "default") -> list[dict[str, Any]]:
        return self._job_allocs(namespace, job_id)

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
