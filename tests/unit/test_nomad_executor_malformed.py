"""Replies not shaped like Nomad's: a failed read (ExecutorTransient), and the reconcile sweep
goes on following the runs instead of dying silently."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from hrwsi.config import NomadExecutorConfig
from hrwsi.domain import errors
from hrwsi.executors import nomad_client
from hrwsi.executors.base import Attempt, RoutineSpec, RunState
from hrwsi.executors.nomad import NomadExecutor

ROUTINE = RoutineSpec("FSC", cpu=1, ram=1, storage=1, duration_minutes=1, docker_image="fsc:1")
ATTEMPT = Attempt(1, 1, ROUTINE, "vm-1", ("/a",), "/p")
JOB_ID = "hrwsi-task-1-attempt-1"
DONE = {
    "ID": "a1",
    "JobID": JOB_ID,
    "CreateIndex": 5,
    "ClientStatus": "complete",
    "DesiredStatus": "run",
    "TaskStates": {
        "routine": {"Events": [{"Type": "Terminated", "Time": 2, "Details": {"exit_code": "0"}}]}
    },
}


def _executor(replies: dict[str, list[Any]]) -> tuple[NomadExecutor, httpx.AsyncClient]:
    """An executor whose GETs answer, per path, the next scripted body (the last repeats)."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT" and path == "/v1/jobs":
            return httpx.Response(200, json={"EvalID": "e1"})
        if path == "/v1/event/stream":
            return httpx.Response(403, text="Permission denied")
        script = replies[path]
        body = script.pop(0) if len(script) > 1 else script[0]
        return httpx.Response(200, json=body, headers={"X-Nomad-Index": "7"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://nomad")
    client = nomad_client.NomadClient(http, retry=nomad_client.RetryPolicy(1, 0, 0))
    settings = NomadExecutorConfig(sweep_interval_s=0.05)
    return NomadExecutor(settings, client=client), http


@pytest.mark.parametrize(
    "allocs",
    [
        [{"ClientStatus": "complete", "TaskStates": {"routine": "garbage"}}],
        [{"ClientStatus": "complete", "CreateIndex": "not a number"}],
        ["not an object"],
    ],
)
async def test_an_unreadable_allocation_is_a_transient_read_failure(allocs: list[Any]) -> None:
    """status() of a run whose allocation is garbled raises ExecutorTransient (before: an
    AttributeError/ValueError escaped into the launcher)."""
    executor, http = _executor(
        {f"/v1/job/{JOB_ID}": [{"ID": JOB_ID}], f"/v1/job/{JOB_ID}/allocations": [allocs]}
    )
    try:
        with pytest.raises(errors.ExecutorTransient):
            await executor.status(ATTEMPT.key)
    finally:
        await executor.aclose()
        await http.aclose()


async def test_the_sweep_survives_a_garbled_listing_and_reports_the_end() -> None:
    """A job listing that is not a list of objects is logged; the next sweep reads the run's
    end and outcomes() yields it (before: the sweep task died and the run was never reported)."""
    executor, http = _executor(
        {
            "/v1/jobs": [["garbage"], ["garbage"], [{"ID": JOB_ID, "Status": "dead"}]],
            f"/v1/job/{JOB_ID}": [{"ID": JOB_ID, "Status": "dead"}],
            f"/v1/job/{JOB_ID}/allocations": [[DONE]],
        }
    )
    try:
        await executor.submit(ATTEMPT)

        async def first_terminal() -> RunState:
            async for outcome in executor.outcomes():
                if outcome.state.is_terminal:
                    return outcome.state
            raise AssertionError("outcomes ended")

        assert await asyncio.wait_for(first_terminal(), 10) is RunState.PROCESSED
    finally:
        await executor.aclose()
        await http.aclose()
