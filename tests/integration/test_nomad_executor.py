"""The Nomad executor over real HTTP against the Nomad stand-in (CONTRACT.md §7 rows and faults).

No database is involved: these tests exercise the executor and the stand-in only. Outages use
a few seconds; the slow-marked test holds Nomad down for a full minute as the issue asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hrwsi.config import NomadExecutorConfig
from hrwsi.domain import errors
from hrwsi.executors.base import Attempt, Outcome, RoutineSpec, RunState
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.testing.nomad_server import NomadStandIn, Script

ROUTINE = RoutineSpec(
    name="MAJA", cpu=5, ram=5, storage=5, duration_minutes=5, docker_image="reg/maja:4"
)


def attempt(task_id: int = 1, number: int = 1, vm: str = "vm-1", **kw: Any) -> Attempt:
    return Attempt(
        task_id=task_id,
        attempt=number,
        routine=kw.pop("routine", ROUTINE),
        vm_name=vm,
        input_paths=("/eodata/S2/in-1.SAFE", "/eodata/S2/in-2.SAFE"),
        product_path="/HRWSI/L2A/MAJA_PC/31TCH/2026/11/28/prod-1",
        **kw,
    )


def settings(nomad: NomadStandIn, **kw: Any) -> NomadExecutorConfig:
    values: dict[str, Any] = {
        "address": nomad.address,
        "sweep_interval_s": 0.3,
        "placement_timeout_s": 0.6,
        "event_silence_s": 1.0,
        "request_timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.0,
        "backoff_max_s": 0.0,
    }
    values.update(kw)
    return NomadExecutorConfig(**values)


class Collector:
    """Consumes ``outcomes()`` in the background and lets tests wait for a state."""

    def __init__(self, executor: NomadExecutor) -> None:
        self.executor = executor
        self.seen: list[Outcome] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for outcome in self.executor.outcomes():
            self.seen.append(outcome)
            self._changed.set()

    def states(self, key: str) -> list[RunState]:
        return [o.state for o in self.seen if o.key == key]

    async def wait_for(
        self,
        key: str,
        done: Callable[[Outcome], bool] = lambda o: o.state.is_terminal,
        timeout: float = 10.0,
    ) -> Outcome:
        async def loop() -> Outcome:
            while True:
                for outcome in self.seen:
                    if outcome.key == key and done(outcome):
                        return outcome
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def running(nomad: NomadStandIn, **kw: Any) -> AsyncIterator[tuple[NomadExecutor, Collector]]:
    executor = NomadExecutor(settings(nomad, **kw))
    collector = Collector(executor)
    try:
        yield executor, collector
    finally:
        await collector.close()
        await executor.aclose()


@pytest.fixture
async def nomad() -> AsyncIterator[NomadStandIn]:
    async with NomadStandIn(nodes=["vm-1", "vm-2"], heartbeat_s=0.2) as server:
        yield server


async def run_one(nomad: NomadStandIn, script: Script, **kw: Any) -> tuple[Outcome, Collector]:
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = script
    async with running(nomad, **kw) as (executor, collector):
        run_id = await executor.submit(a)
        assert run_id == f"hrwsi-{a.key}"
        outcome = await collector.wait_for(a.key)
        assert (await executor.status(a.key)).state is outcome.state
        return outcome, collector


# -- §7 outcome table ------------


async def test_exit_zero_is_started_then_processed(nomad: NomadStandIn) -> None:
    """A run that exits 0 is reported STARTED, then PROCESSED with exit code 0."""
    outcome, collector = await run_one(nomad, Script(exit_code=0, run_s=0.3))
    assert outcome.state is RunState.PROCESSED and outcome.exit_code == 0
    assert collector.states(outcome.key) == [RunState.STARTED, RunState.PROCESSED]


async def test_non_zero_exit_is_internal_error(nomad: NomadStandIn) -> None:
    """A run that exits 3 (no OOM) is an INTERNAL_ERROR carrying exit code 3."""
    outcome, _ = await run_one(nomad, Script(exit_code=3))
    assert outcome.state is RunState.INTERNAL_ERROR
    assert outcome.exit_code == 3


@pytest.mark.parametrize(
    "failure",
    [
        "Driver Failure",
        "Setup Failure",
        "Failed Artifact Download",
        "Failed Validation",
        "Task hook failed",
    ],
)
async def test_never_started_failures_are_external(nomad: NomadStandIn, failure: str) -> None:
    """A run failing before it starts (no Terminated event) is an EXTERNAL_ERROR naming why."""
    outcome, collector = await run_one(nomad, Script(failure=failure))
    assert outcome.state is RunState.EXTERNAL_ERROR
    assert failure in outcome.message and "manifest unknown" in outcome.message
    assert RunState.STARTED not in collector.states(outcome.key)


async def test_oom_killed_is_external_resource_error(nomad: NomadStandIn) -> None:
    """A run killed by the kernel for memory is an EXTERNAL_ERROR that says it was resources."""
    outcome, _ = await run_one(nomad, Script(oom=True))
    assert outcome.state is RunState.EXTERNAL_ERROR
    assert "resource" in outcome.message and "memory" in outcome.message
    assert outcome.exit_code == 137


async def test_lost_node_is_external_error(nomad: NomadStandIn) -> None:
    """An allocation marked lost (node down) is an EXTERNAL_ERROR."""
    outcome, collector = await run_one(nomad, Script(lost=True))
    assert outcome.state is RunState.EXTERNAL_ERROR and "lost" in outcome.message
    assert collector.states(outcome.key)[0] is RunState.STARTED


async def test_unknown_stays_started_until_lost(nomad: NomadStandIn) -> None:
    """While the allocation is 'unknown' the run stays STARTED; once lost it is EXTERNAL_ERROR."""
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(unknown_then_lost=True, run_s=0.1, unknown_s=1.5)
    async with running(nomad) as (executor, collector):
        await executor.submit(a)
        for _ in range(100):
            allocs = nomad.allocations(f"hrwsi-{a.key}")
            if allocs and allocs[0]["ClientStatus"] == "unknown":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the allocation never became unknown")
        during = await executor.status(a.key)
        assert during.state is RunState.STARTED
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.EXTERNAL_ERROR and "lost" in outcome.message
        assert collector.states(a.key) == [RunState.STARTED, RunState.EXTERNAL_ERROR]


async def test_unplaceable_run_fails_after_timeout_and_is_stopped(nomad: NomadStandIn) -> None:
    """A run pinned to a VM no node has stays SUBMITTED, then fails as placement and is stopped."""
    a = attempt(vm="vm-nowhere")
    async with running(nomad, placement_timeout_s=1.0) as (executor, collector):
        await executor.submit(a)
        early = await executor.status(a.key)
        assert early.state is RunState.SUBMITTED
        job = nomad.job(f"hrwsi-{a.key}")
        assert job is not None and job["Status"] == "pending"
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.EXTERNAL_ERROR
        assert "placement" in outcome.message
        assert "${attr.unique.hostname} = vm-nowhere" in outcome.message
        job = nomad.job(f"hrwsi-{a.key}")
        assert job is not None and job["Stop"] is True and job["Status"] == "dead"
        assert nomad.runs_started == []


async def test_cancel_is_external_error_cancelled(nomad: NomadStandIn) -> None:
    """Cancelling a running attempt stops the job; it ends as EXTERNAL_ERROR (cancelled)."""
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(hang=True)
    async with running(nomad) as (executor, collector):
        await executor.submit(a)
        await collector.wait_for(a.key, lambda o: o.state is RunState.STARTED)
        await executor.cancel(a.key)
        await executor.cancel(a.key)  # idempotent
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.EXTERNAL_ERROR and "cancelled" in outcome.message
        # The killed routine exited 0 on the interrupt: still not a success.
        (alloc,) = nomad.allocations(f"hrwsi-{a.key}")
        events = alloc["TaskStates"]["routine"]["Events"]
        assert {"Terminated", "Killed"} <= {e["Type"] for e in events}
        assert alloc["DesiredStatus"] == "stop" and alloc["ClientStatus"] == "complete"


async def test_purged_before_recorded_is_lost_track(nomad: NomadStandIn) -> None:
    """A followed job that vanishes (404) before a terminal state is EXTERNAL_ERROR 'lost track'."""
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(hang=True)
    async with running(nomad) as (executor, collector):
        await executor.submit(a)
        await collector.wait_for(a.key, lambda o: o.state is RunState.STARTED)
        async with httpx.AsyncClient(base_url=nomad.address) as other:
            reply = await other.delete(f"/v1/job/hrwsi-{a.key}", params={"purge": "true"})
            assert reply.status_code == 200
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.EXTERNAL_ERROR and "lost track" in outcome.message


async def test_garbage_collected_before_seen_is_lost_track(nomad: NomadStandIn) -> None:
    """A run that ends and is GC'd while the executor hears nothing is reported 'lost track'."""
    nomad.gc_threshold_s = 0.1
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(start_delay_s=0.2, run_s=0.1)
    async with running(nomad, sweep_interval_s=2.0, event_silence_s=30) as (executor, collector):
        await executor.submit(a)
        nomad.silence_streams()
        nomad.leader_lost = True  # every read fails while the run ends and is collected
        for _ in range(100):
            if nomad.job(f"hrwsi-{a.key}") is None:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the stand-in never collected the job")
        nomad.leader_lost = False
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.EXTERNAL_ERROR and "lost track" in outcome.message
        assert nomad.runs_started == [f"hrwsi-{a.key}"]
        assert RunState.PROCESSED not in collector.states(a.key)


async def test_forget_purges_and_status_becomes_unknown(nomad: NomadStandIn) -> None:
    """forget() purges the recorded job from Nomad; its key then reads UNKNOWN."""
    outcome_key = attempt().key
    async with running(nomad) as (executor, collector):
        await executor.submit(attempt())
        await collector.wait_for(outcome_key)
        await executor.forget(outcome_key)
        assert nomad.job(f"hrwsi-{outcome_key}") is None
        assert (await executor.status(outcome_key)).state is RunState.UNKNOWN


# -- crash safety and restarts ------------


async def test_submit_repeated_after_crash_runs_once(nomad: NomadStandIn) -> None:
    """A submit repeated by a restarted executor (and twice in one) never starts a second run."""
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(run_s=0.5)
    first = NomadExecutor(settings(nomad))
    run_id = await first.submit(a)
    await first.aclose()  # the launcher dies before recording the dispatch
    async with running(nomad) as (second, collector):
        assert await second.submit(a) == run_id
        assert await second.submit(a) == run_id
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.PROCESSED
    assert nomad.runs_started == [run_id]
    assert len(nomad.allocations(run_id)) == 1


async def test_restarted_executor_rebuilds_view_from_status(nomad: NomadStandIn) -> None:
    """Runs that ended while no executor ran are found by status(); unsent keys read UNKNOWN."""
    first = NomadExecutor(settings(nomad))
    done, failed, running_one = attempt(1), attempt(2), attempt(3)
    nomad.scripts[f"hrwsi-{failed.key}"] = Script(exit_code=2)
    nomad.scripts[f"hrwsi-{running_one.key}"] = Script(run_s=1.5)
    for a in (done, failed, running_one):
        await first.submit(a)
    await first.aclose()
    await asyncio.sleep(0.6)
    async with running(nomad) as (second, collector):
        assert (await second.status(done.key)).state is RunState.PROCESSED
        assert (await second.status(failed.key)).state is RunState.INTERNAL_ERROR
        assert (await second.status(running_one.key)).state is RunState.STARTED
        assert (await second.status(attempt(99).key)).state is RunState.UNKNOWN
        later = await collector.wait_for(running_one.key)
        assert later.state is RunState.PROCESSED


# -- event stream and outages ------------


async def test_stream_cut_mid_run_loses_no_outcome(nomad: NomadStandIn) -> None:
    """Cutting the event stream while runs go on loses no outcome; it resumes from its index."""
    keys = [attempt(i).key for i in range(1, 4)]
    for key in keys:
        nomad.scripts[f"hrwsi-{key}"] = Script(run_s=0.6)
    async with running(nomad, sweep_interval_s=60) as (executor, collector):
        for i in range(1, 4):
            await executor.submit(attempt(i))
        for key in keys:
            await collector.wait_for(key, lambda o: o.state is RunState.STARTED)
        nomad.cut_streams()
        for key in keys:
            assert (await collector.wait_for(key)).state is RunState.PROCESSED
        streams = [r for r in nomad.requests if r.path == "/v1/event/stream"]
        assert len(streams) >= 2
        assert int(streams[-1].query["index"][0]) > 0


async def test_silent_stream_is_reopened(nomad: NomadStandIn) -> None:
    """A stream that stays open but sends nothing is dropped after event_silence_s and reopened."""
    a = attempt()
    nomad.scripts[f"hrwsi-{a.key}"] = Script(start_delay_s=0.5, run_s=0.3)
    async with running(nomad, sweep_interval_s=60, event_silence_s=0.8) as (executor, collector):
        await executor.submit(a)
        await asyncio.sleep(0.2)
        nomad.silence_streams()
        outcome = await collector.wait_for(a.key)
        assert outcome.state is RunState.PROCESSED
        streams = [r for r in nomad.requests if r.path == "/v1/event/stream"]
        assert len(streams) >= 2


async def outage_catch_up(nomad: NomadStandIn, seconds: float) -> None:
    keys = [attempt(i).key for i in range(1, 4)]
    nomad.scripts[f"hrwsi-{keys[0]}"] = Script(run_s=0.5)
    nomad.scripts[f"hrwsi-{keys[1]}"] = Script(run_s=0.5, exit_code=4)
    nomad.scripts[f"hrwsi-{keys[2]}"] = Script(run_s=seconds + 1.0)
    async with running(nomad, sweep_interval_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.5) as (
        executor,
        collector,
    ):
        for i in range(1, 4):
            await executor.submit(attempt(i))
        await collector.wait_for(keys[0], lambda o: o.state is RunState.STARTED)
        outage = asyncio.create_task(nomad.outage(seconds))
        await asyncio.sleep(0.2)
        with pytest.raises(errors.ExecutorTransient):
            await executor.submit(attempt(4))
        await outage
        assert (await collector.wait_for(keys[0], timeout=15)).state is RunState.PROCESSED
        assert (await collector.wait_for(keys[1], timeout=15)).state is RunState.INTERNAL_ERROR
        assert (await collector.wait_for(keys[2], timeout=15)).state is RunState.PROCESSED
        await executor.submit(attempt(4))
        assert (await collector.wait_for(attempt(4).key)).state is RunState.PROCESSED


async def test_nomad_unreachable_then_back_catches_up(nomad: NomadStandIn) -> None:
    """Nomad unreachable for 3 s (standing for a minute) and back: every outcome arrives."""
    await outage_catch_up(nomad, 3.0)


@pytest.mark.slow
async def test_nomad_unreachable_for_a_minute_catches_up(nomad: NomadStandIn) -> None:
    """Nomad unreachable for a full minute and back: every outcome arrives."""
    await outage_catch_up(nomad, 60.0)


# -- errors ------------


async def test_leader_loss_is_retried(nomad: NomadStandIn) -> None:
    """Two 'No cluster leader' 500s during a submit are retried; the run happens once."""
    nomad.fail_next(2, body="rpc error: No cluster leader", path_contains="/v1/jobs")
    outcome, _ = await run_one(nomad, Script())
    assert outcome.state is RunState.PROCESSED
    assert len(nomad.runs_started) == 1


async def test_wrong_token_is_rejected_without_retry() -> None:
    """A token Nomad does not know gives ExecutorRejected at once (403 ACL token not found)."""
    async with NomadStandIn(tokens={"good"}) as nomad:
        executor = NomadExecutor(settings(nomad, token=SecretStr("bad")))
        with pytest.raises(errors.ExecutorRejected, match="ACL token not found"):
            await executor.submit(attempt())
        await executor.aclose()
        assert len([r for r in nomad.requests if r.path == "/v1/jobs"]) == 1


async def test_invalid_spec_is_rejected() -> None:
    """A spec Nomad refuses (memory below its minimum) raises ExecutorRejected with its reason."""
    tiny = RoutineSpec(name="X", cpu=1, ram=0, storage=1, duration_minutes=1, docker_image="x")
    async with NomadStandIn() as nomad:
        executor = NomadExecutor(settings(nomad))
        with pytest.raises(errors.ExecutorRejected, match="minimum MemoryMB value is 10"):
            await executor.submit(attempt(routine=tiny))
        await executor.aclose()


# -- the job as Nomad receives it ------------


async def test_secrets_never_reach_the_job_spec(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither passthrough secret values nor the ACL token reach the job JSON or the logs."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("S3_SECRET_KEY", "s3cr3t-value-42")
    async with NomadStandIn(tokens={"tok-very-secret"}, nodes=["vm-1"]) as nomad:
        cfg = settings(
            nomad, token=SecretStr("tok-very-secret"), passthrough_env=("S3_SECRET_KEY",)
        )
        async with running(nomad, **cfg.model_dump(exclude={"address"})) as (executor, coll):
            nomad.variables[("default", "nomad/jobs")] = {"OTHER": "kept"}
            assert await executor.publish_secrets(os.environ) == ["S3_SECRET_KEY"]
            assert nomad.variables[("default", "nomad/jobs")] == {
                "OTHER": "kept",
                "S3_SECRET_KEY": "s3cr3t-value-42",
            }
            await executor.submit(attempt())
            assert (await coll.wait_for(attempt().key)).state is RunState.PROCESSED
        sent = json.dumps(nomad.received_jobs)
        assert "s3cr3t-value-42" not in sent and "tok-very-secret" not in sent
        template = nomad.received_jobs[0]["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"][0]
        assert "{{ .S3_SECRET_KEY }}" in template["EmbeddedTmpl"] and template["Envvars"]
        assert all(r.headers.get("x-nomad-token") == "tok-very-secret" for r in nomad.requests)
        assert all("tok-very-secret" not in str(r.query) for r in nomad.requests)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "nomad.outcome" in logged and "nomad.submitted" in logged
    assert "tok-very-secret" not in logged and "s3cr3t-value-42" not in logged


async def test_job_spec_resources_pinning_and_meta(nomad: NomadStandIn) -> None:
    """The registered job asks for the routine's resources, pins the VM, disables retries."""
    a = attempt(task_id=7, number=2, vm="vm-2", meta={"tile": "31TCH"})
    async with running(nomad) as (executor, collector):
        await executor.submit(a)
        await collector.wait_for(a.key)
    body = nomad.received_jobs[0]
    assert body["EnforceIndex"] is True and body["JobModifyIndex"] == 0
    job = nomad.job(f"hrwsi-{a.key}")
    assert job is not None and job["Type"] == "batch"
    group = job["TaskGroups"][0]
    task = group["Tasks"][0]
    assert task["Driver"] == "docker" and task["Config"]["image"] == "reg/maja:4"
    assert task["Resources"] == {"CPU": 5000, "MemoryMB": 5120}
    assert group["EphemeralDisk"]["SizeMB"] == 5120
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Unlimited"] is False
    assert job["Constraints"] == [
        {"LTarget": "${attr.unique.hostname}", "RTarget": "vm-2", "Operand": "="}
    ]
    assert nomad.allocations(f"hrwsi-{a.key}")[0]["NodeName"] == "vm-2"
    meta = job["Meta"]
    assert meta["HRWSI_TASK_ID"] == "7" and meta["HRWSI_ATTEMPT"] == "2"
    assert meta["HRWSI_VM_NAME"] == "vm-2" and meta["HRWSI_ROUTINE"] == "MAJA"
    assert meta["HRWSI_INPUT_PATH"] == "/eodata/S2/in-1.SAFE"
    assert json.loads(meta["HRWSI_INPUT_PATHS"]) == list(a.input_paths)
    assert meta["HRWSI_PRODUCT_PATH"] == a.product_path
    assert meta["HRWSI_META_TILE"] == "31TCH"
    assert task["Env"]["HRWSI_TASK_ID"] == "${NOMAD_META_HRWSI_TASK_ID}"


async def test_pinning_off_places_anywhere(nomad: NomadStandIn) -> None:
    """With pin_to_vm off, a run planned for an unknown VM is placed on any node and succeeds."""
    a = attempt(vm="vm-nowhere")
    async with running(nomad, pin_to_vm=False) as (executor, collector):
        await executor.submit(a)
        assert (await collector.wait_for(a.key)).state is RunState.PROCESSED
    job = nomad.job(f"hrwsi-{a.key}")
    assert job is not None and job["Constraints"] == []


async def test_routine_without_image_is_rejected_before_nomad(nomad: NomadStandIn) -> None:
    """A routine with no docker image is refused without registering anything."""
    bare = RoutineSpec(name="X", cpu=1, ram=1, storage=1, duration_minutes=1)
    executor = NomadExecutor(settings(nomad))
    with pytest.raises(errors.ExecutorRejected, match="no docker_image"):
        await executor.submit(attempt(routine=bare))
    await executor.aclose()
    assert nomad.received_jobs == []
