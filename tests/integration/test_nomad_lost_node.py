"""Lost nodes: Nomad replaces lost allocations unless told not to; an attempt runs once.

Real HTTP against the Nomad stand-in, which replaces a lost allocation like real Nomad
(whatever the reschedule policy says) unless the group forbids it. The stand-in counts the
executions (allocations that started) per job id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors import nomad as nomad_executor
from hrwsi.executors.base import Attempt, Outcome, RoutineSpec, RunState
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.executors.nomad_client import NomadClient, RetryPolicy
from hrwsi.testing.nomad_server import NomadStandIn, Script

ROUTINE = RoutineSpec("MAJA", 1, 1, 1, 1, docker_image="reg/maja:4")


def batch_job(job_id: str, **group: Any) -> dict[str, Any]:
    """A batch job with reschedules and restarts off and no constraint."""
    return {
        "ID": job_id,
        "Type": "batch",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "run",
                "Count": 1,
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "busybox"}}],
                **group,
            }
        ],
    }


@contextlib.asynccontextmanager
async def client_of(nomad: NomadStandIn) -> AsyncIterator[NomadClient]:
    async with httpx.AsyncClient(base_url=nomad.address) as http:
        yield NomadClient(http, retry=RetryPolicy(2, 0.0, 0.0))


async def settle(nomad: NomadStandIn, job_id: str, allocations: int) -> list[dict[str, Any]]:
    """The job's allocations once there are ``allocations`` of them, all finished."""
    for _ in range(200):
        allocs = nomad.allocations(job_id)
        done = all(a["ClientStatus"] in ("complete", "failed", "lost") for a in allocs)
        if len(allocs) >= allocations and done:
            return allocs
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id}: allocations {nomad.allocations(job_id)}")


async def test_standin_replaces_a_lost_allocation_without_a_disconnect_block() -> None:
    """Like real Nomad, a lost allocation is replaced (the routine runs twice) although the
    reschedule policy allows no reschedule, when the group has no disconnect block."""
    async with NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2) as nomad, client_of(nomad) as client:
        nomad.scripts["plain"] = Script(lost=True, replacement=Script(run_s=0.05))
        await client.register_job(batch_job("plain"))
        lost, replacement = await settle(nomad, "plain", 2)
        assert lost["ClientStatus"] == "lost" and lost["NextAllocation"] == replacement["ID"]
        assert replacement["ClientStatus"] == "complete"
        assert replacement["PreviousAllocation"] == lost["ID"]
        assert nomad.executions["plain"] == 2


@pytest.mark.parametrize(
    "forbid",
    [{"Disconnect": {"Replace": False}}, {"PreventRescheduleOnLost": True}],
    ids=["disconnect-replace-false", "prevent-reschedule-on-lost"],
)
async def test_standin_keeps_a_lost_allocation_when_the_group_forbids_replacing_it(
    forbid: dict[str, Any],
) -> None:
    """With replace = false (or prevent_reschedule_on_lost) a lost allocation stays lost."""
    async with NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2) as nomad, client_of(nomad) as client:
        nomad.scripts["kept"] = Script(lost=True, replacement=Script(run_s=0.05))
        await client.register_job(batch_job("kept", **forbid))
        (lost,) = await settle(nomad, "kept", 1)
        await asyncio.sleep(0.3)  # a replacement would have been placed at once
        assert [a["ID"] for a in nomad.allocations("kept")] == [lost["ID"]]
        assert lost["ClientStatus"] == "lost" and lost["NextAllocation"] == ""
        assert nomad.executions["kept"] == 1


async def test_standin_lose_node_replaces_on_another_node() -> None:
    """A node marked down loses its live allocations; the replacement lands elsewhere."""
    async with (
        NomadStandIn(nodes=["vm-1", "vm-2"], heartbeat_s=0.2) as nomad,
        client_of(nomad) as client,
    ):
        nomad.scripts["moved"] = Script(hang=True)
        await client.register_job(batch_job("moved"))
        for _ in range(100):
            if nomad.executions["moved"]:
                break
            await asyncio.sleep(0.02)
        nomad.lose_node("vm-1")
        lost, replacement = sorted(nomad.allocations("moved"), key=lambda a: a["CreateIndex"])
        assert lost["NodeName"] == "vm-1" and lost["ClientStatus"] == "lost"
        assert replacement["NodeName"] == "vm-2"


# -- the executor ------------


def executor_for(nomad: NomadStandIn) -> NomadExecutor:
    return NomadExecutor(
        NomadExecutorConfig(
            address=nomad.address,
            sweep_interval_s=0.3,
            placement_timeout_s=5.0,
            event_silence_s=1.0,
            request_timeout_s=2.0,
            backoff_initial_s=0.0,
            backoff_max_s=0.0,
        )
    )


async def first_terminal(executor: NomadExecutor, nomad: NomadStandIn) -> tuple[Outcome, bool]:
    """The first terminal outcome, and whether the job was already stopped when it came."""
    async for outcome in executor.outcomes():
        if outcome.state.is_terminal:
            job = nomad.job(executor.job_id(outcome.key))
            return outcome, bool(job and job["Stop"])
    raise AssertionError("the outcomes ended")


def test_the_job_spec_forbids_replacing_lost_allocations() -> None:
    """The group carries Disconnect.Replace = false and PreventRescheduleOnLost = true."""
    attempt = Attempt(1, 1, ROUTINE, "vm-1", (), "/p")
    (group,) = nomad_executor.job_spec(attempt, NomadExecutorConfig())["TaskGroups"]
    assert group["Disconnect"] == {"Replace": False}
    assert group["PreventRescheduleOnLost"] is True


@pytest.mark.parametrize("old_nomad", [False, True], ids=["nomad-1.8", "nomad-before-1.7.2"])
async def test_a_lost_node_runs_the_attempt_once_and_stops_its_job(old_nomad: bool) -> None:
    """One execution per attempt key for a lost node: the spec forbids the replacement, and
    where Nomad ignores that (before 1.7.2) the job is stopped before the outcome is
    reported, so the replacement never starts and the launcher's retry is the next run."""
    async with NomadStandIn(
        nodes=["vm-1"], heartbeat_s=0.2, replace_lost_always=old_nomad
    ) as nomad:
        executor = executor_for(nomad)
        attempt = Attempt(7, 1, ROUTINE, "vm-1", (), "/p")
        job_id = executor.job_id(attempt.key)
        # A replacement would start 1 s after the loss and then run until stopped.
        nomad.scripts[job_id] = Script(lost=True, replacement=Script(start_delay_s=1.0, hang=True))
        try:
            await executor.submit(attempt)
            outcome, stopped = await asyncio.wait_for(first_terminal(executor, nomad), 10)
            assert outcome.state is RunState.EXTERNAL_ERROR and "lost" in outcome.message
            assert stopped, "the job must be stopped before the lost outcome is reported"
            await asyncio.sleep(1.3)
            assert nomad.executions[job_id] == 1
            allocs = nomad.allocations(job_id)
            assert len(allocs) == (2 if old_nomad else 1)
            assert all(a["DesiredStatus"] == "stop" for a in allocs)
            assert (await executor.status(attempt.key)).state is RunState.EXTERNAL_ERROR
        finally:
            await executor.aclose()
