"""The Executor contract, run against every executor the launcher may be given.

Each executor is reached through a *harness*: a class built with ``Harness(tmp_path)`` that is
an async context manager yielding the executor (and closing it after), with
``attempt(task_id, behaviour) -> Attempt`` making an attempt that will ``"succeed"`` (exit 0),
``"fail"`` (exit non-zero) or ``"hang"`` (run until cancelled). To add an executor, write its
harness in the package (e.g. ``hrwsi.testing.nomad_server:ContractHarness``) and add ONE line
to ``HARNESSES`` below.
"""

from __future__ import annotations

import asyncio
import importlib
import textwrap
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pytest

from hrwsi.executors.base import Attempt, Executor, Outcome, RoutineSpec, RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.executors.local import LocalExecutor

Behaviour = Literal["succeed", "fail", "hang"]

HARNESSES: dict[str, str] = {
    "fake": "test_executor_contract:FakeHarness",
    "local": "test_executor_contract:LocalHarness",
    "nomad": "hrwsi.testing.nomad_server:ContractHarness",
}


def _attempt(task_id: int, command: tuple[str, ...]) -> Attempt:
    spec = RoutineSpec(
        name="R",
        cpu=1,
        ram=1,
        storage=1,
        duration_minutes=1,
        docker_image="busybox:1",
        command=command,
    )
    return Attempt(
        task_id=task_id,
        attempt=1,
        routine=spec,
        vm_name="vm-1",
        input_paths=("/in/x",),
        product_path="/HRWSI/L2A/PC/T/2026/01/01/x",
    )


class FakeHarness:
    def __init__(self, tmp_path: Path) -> None:
        self.executor = FakeExecutor()

    async def __aenter__(self) -> Executor:
        return self.executor

    async def __aexit__(self, *exc: object) -> None:
        await self.executor.aclose()

    def attempt(self, task_id: int, behaviour: Behaviour) -> Attempt:
        a = _attempt(task_id, ())
        steps = {
            "succeed": (RunState.STARTED, RunState.PROCESSED),
            "fail": (RunState.STARTED, RunState.INTERNAL_ERROR),
            "hang": (RunState.STARTED,),
        }[behaviour]
        self.executor.script(a.key, *steps)
        return a


class LocalHarness:
    CODE = {
        "succeed": "print('ok')",
        "fail": "import sys; sys.exit(4)",
        "hang": "import time; time.sleep(120)",
    }

    def __init__(self, tmp_path: Path) -> None:
        self.executor = LocalExecutor(tmp_path / "runs", tmp_path / "data", poll_interval_s=0.05)

    async def __aenter__(self) -> Executor:
        return self.executor

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.executor.aclose()

    def attempt(self, task_id: int, behaviour: Behaviour) -> Attempt:
        return _attempt(task_id, ("{python}", "-c", textwrap.dedent(self.CODE[behaviour])))


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    module, _, name = HARNESSES[request.param].partition(":")
    return getattr(importlib.import_module(module), name)(tmp_path)


async def _until(
    executor: Executor, key: str, want: RunState | None = None, timeout: float = 30
) -> list[Outcome]:
    """Observations of ``key`` until a terminal one (or ``want``) arrives."""
    seen: list[Outcome] = []

    async def _read() -> None:
        async for o in executor.outcomes():
            if o.key != key:
                continue
            seen.append(o)
            if o.state is want or (want is None and o.state.is_terminal):
                return

    await asyncio.wait_for(_read(), timeout)
    return seen


async def test_success_is_observed_then_forgotten(harness: Any) -> None:
    """A run that exits 0 is seen as processed (after started, if seen) and forgettable."""
    async with harness as executor:
        a = harness.attempt(101, "succeed")
        await executor.submit(a)
        seen = await _until(executor, a.key)
        assert seen[-1].state is RunState.PROCESSED
        assert all(o.state in (RunState.SUBMITTED, RunState.STARTED) for o in seen[:-1])
        assert (await executor.status(a.key)).state is RunState.PROCESSED
        await executor.forget(a.key)
        assert (await executor.status(a.key)).state is RunState.UNKNOWN


async def test_failure_is_an_internal_error(harness: Any) -> None:
    """A run that exits non-zero is an internal error, in the stream and from status."""
    async with harness as executor:
        a = harness.attempt(102, "fail")
        await executor.submit(a)
        seen = await _until(executor, a.key)
        assert seen[-1].state is RunState.INTERNAL_ERROR
        assert (await executor.status(a.key)).state is RunState.INTERNAL_ERROR


async def test_submit_is_idempotent(harness: Any) -> None:
    """Submitting one attempt twice gives the same run id and one run."""
    async with harness as executor:
        a = harness.attempt(103, "hang")
        first = await executor.submit(a)
        second = await executor.submit(a)
        assert first == second
        await _until(executor, a.key, RunState.STARTED)
        await executor.cancel(a.key)


async def test_unknown_key_is_unknown(harness: Any) -> None:
    """status() of a key never submitted says UNKNOWN; cancel and forget of it are harmless."""
    async with harness as executor:
        assert (await executor.status("task-999-attempt-9")).state is RunState.UNKNOWN
        await executor.cancel("task-999-attempt-9")
        await executor.forget("task-999-attempt-9")


async def test_cancel_ends_a_running_attempt(harness: Any) -> None:
    """cancel() of a running attempt ends it as an external error; cancelling again is harmless."""
    async with harness as executor:
        a = harness.attempt(104, "hang")
        await executor.submit(a)
        await _until(executor, a.key, RunState.STARTED)
        await executor.cancel(a.key)

        async def _terminal() -> Outcome:
            for _ in range(600):
                o = await executor.status(a.key)
                if o.state.is_terminal:
                    return o
                await asyncio.sleep(0.05)
            raise AssertionError("the cancelled run never ended")

        out = await asyncio.wait_for(_terminal(), 30)
        assert out.state is RunState.EXTERNAL_ERROR
        await executor.cancel(a.key)


async def test_aclose_ends_the_outcome_stream(harness: Any) -> None:
    """After aclose() the outcome iterator finishes instead of waiting forever."""
    async with harness as executor:
        stream = executor.outcomes()

        async def _drain() -> int:
            return len([o async for o in stream])

        drain = asyncio.create_task(_drain())
        await asyncio.sleep(0.05)
        await executor.aclose()
        await asyncio.wait_for(drain, 10)
