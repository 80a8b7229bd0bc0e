"""The jobs API: register, parse, dispatch, read, list, stop and purge."""

from __future__ import annotations

import base64
import copy
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hrwsi.testing.nomad_server.common import (
    _MAX_PAYLOAD,
    _NS,
    _HttpError,
    _Job,
    _multierror,
)
from hrwsi.testing.nomad_server.scheduler import Scheduler


class JobsApi(Scheduler):
    """``/v1/jobs``, ``/v1/jobs/parse`` and ``/v1/job/:id[/dispatch|/summary|/allocations]``."""

    async def _jobs_route(self, request: Request, ns: str, body: bytes) -> Response | None:
        """The answer of the jobs API, or None when the path is not one of its."""
        path = request.url.path
        method = request.method
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
        return None

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
            group.setdefault("PreventRescheduleOnLost", False)  # Nomad >= 1.7.2
            if isinstance(group.get("Disconnect"), dict):  # Nomad >= 1.8
                group["Disconnect"] = {
                    "LostAfter": 0,
                    "StopOnClientAfter": None,
                    "Replace": True,
                    "Reconcile": "best_score",
                    **group["Disconnect"],
                }
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
