"""Scheduling: evaluations, placement, blocked evaluations, allocation life, node
loss (with Nomad's replacement of lost allocations) and garbage collection."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from hrwsi.testing.nomad_server.common import (
    _FAILURE_DETAIL,
    _TERMINAL_CLIENT,
    Script,
    _Job,
    _rfc3339,
)
from hrwsi.testing.nomad_server.core import ClusterCore


class Scheduler(ClusterCore):
    """Places allocations and plays their scripts (see the package docstring)."""

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

    def gc(self) -> None:
        """Collect every finished job now (as ``PUT /v1/system/gc``)."""
        self._collect(force=True)

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
                    script = job.pending_scripts.pop(0) if job.pending_scripts else None
                    alloc = self._new_alloc(job, group, node, eval_id, script=script)
                    events.append(self._alloc_event("PlanResult", alloc))
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
        self,
        job: _Job,
        group: dict[str, Any],
        node: dict[str, Any],
        eval_id: str,
        *,
        script: Script | None = None,
        previous: str = "",
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
        if previous:
            alloc["PreviousAllocation"] = previous
        script = script or self._script_for(job)
        self._sims[alloc_id] = asyncio.create_task(self._simulate(alloc_id, script))
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
        self.executions[alloc["JobID"]] += 1
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
            self._lose(alloc, script)
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

    def _replaces_lost(self, group: Mapping[str, Any]) -> bool:
        """Whether Nomad replaces this group's lost allocations (it does unless told not to).

        The reschedule policy does not matter: it governs failed allocations only.
        """
        if self.replace_lost_always:
            return True
        disconnect = group.get("Disconnect") or {}
        if disconnect.get("Replace") is False:  # Nomad >= 1.8
            return False
        return group.get("PreventRescheduleOnLost") is not True  # Nomad >= 1.7.2

    def _lose(self, alloc: dict[str, Any], script: Script) -> None:
        """Mark an allocation lost and, in the same plan, place its replacement if allowed."""
        alloc.update(
            ClientStatus="lost",
            DesiredStatus="stop",
            DesiredDescription="alloc is lost since its node is down",
            ClientDescription="alloc is lost since its node is down",
        )
        task = self._sims.pop(alloc["ID"], None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        for state in self._tasks(alloc):
            if state["State"] != "dead":
                state.update(State="dead", FinishedAt=_rfc3339(time.time_ns()))
        alloc["ModifyTime"] = time.time_ns()
        alloc["ModifyIndex"] = self._index + 1
        events = [self._alloc_event("PlanResult", alloc)]
        job = self._jobs.get((alloc["Namespace"], alloc["JobID"]))
        group = next(
            (g for g in (job.spec["TaskGroups"] if job else []) if g["Name"] == alloc["TaskGroup"]),
            None,
        )
        if (
            job is not None
            and group is not None
            and not job.spec.get("Stop")
            and self._replaces_lost(group)
        ):
            again = script.replacement or Script(run_s=script.run_s)
            node, _ = self._place(job, group)
            if node is None:  # no node can take it now: queued until one can
                job.queued[group["Name"]] = job.queued.get(group["Name"], 0) + 1
                job.pending_scripts.append(again)
            else:
                replacement = self._new_alloc(
                    job, group, node, alloc["EvalID"], script=again, previous=alloc["ID"]
                )
                alloc["NextAllocation"] = replacement["ID"]
                events = [
                    self._alloc_event("PlanResult", alloc),
                    self._alloc_event("PlanResult", replacement),
                ]
        self._write(["allocs", "jobs", "job_summary", "evals"], events)
        if job is not None:
            self._refresh(job)

    def lose_node(self, name: str) -> None:
        """The node misses its heartbeats and is marked down: its live allocations are lost
        (and replaced elsewhere unless their group forbids it). ``add_node`` brings it back."""
        for node in self._nodes.values():
            if node["Name"] != name:
                continue
            node["Status"] = "down"
            node["ModifyIndex"] = self._index + 1
            self._write(["nodes"], [])
            for alloc in list(self._allocs.values()):
                if alloc["NodeID"] == node["ID"] and alloc["ClientStatus"] not in _TERMINAL_CLIENT:
                    job = self._jobs.get((alloc["Namespace"], alloc["JobID"]))
                    self._lose(alloc, self._script_for(job) if job else Script())

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
