"""The dashboard's snapshot cache: one computation per window, shared by concurrent callers."""

from __future__ import annotations

import asyncio

import pytest

from hrwsi.web.dashboard import SnapshotCache


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Compute:
    """Counts its calls; each waits for ``gate`` (open unless a test closes it)."""

    def __init__(self, clock: Clock | None = None, takes_s: float = 0.0) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_with: Exception | None = None
        self._clock = clock
        self._takes_s = takes_s

    async def __call__(self) -> int:
        self.calls += 1
        await self.gate.wait()
        if self._clock is not None:
            self._clock.now += self._takes_s
        if self.fail_with is not None:
            raise self.fail_with
        return self.calls


async def _until_waiting(compute: Compute, calls: int) -> None:
    for _ in range(100):
        if compute.calls == calls:
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # let every caller reach its await


async def test_within_the_window_the_value_is_reused_and_after_it_recomputed() -> None:
    """Calls within max_age_s get the first value; the first call after it computes anew."""
    clock = Clock()
    compute = Compute()
    cache = SnapshotCache(compute, 2.0, clock)
    assert await cache.get() == 1
    clock.now += 1.99
    assert [await cache.get() for _ in range(5)] == [1] * 5
    clock.now += 0.01
    assert await cache.get() == 2
    assert compute.calls == 2


async def test_concurrent_callers_share_one_computation() -> None:
    """Ten callers arriving while a value is computed all wait for that one computation."""
    compute = Compute()
    compute.gate.clear()
    cache = SnapshotCache(compute, 0.0, Clock())  # no reuse window: only the flight is shared
    callers = [asyncio.create_task(cache.get()) for _ in range(10)]
    await _until_waiting(compute, 1)
    compute.gate.set()
    assert await asyncio.gather(*callers) == [1] * 10
    assert compute.calls == 1
    assert await cache.get() == 2  # max_age 0: the next call computes again


async def test_age_counts_from_the_end_of_the_computation() -> None:
    """A computation that takes longer than the window still serves a full window afterwards."""
    clock = Clock()
    compute = Compute(clock, takes_s=5.0)
    cache = SnapshotCache(compute, 2.0, clock)
    assert await cache.get() == 1
    clock.now += 1.5
    assert await cache.get() == 1
    assert compute.calls == 1


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    """Callers waiting on a failed computation all get its error; the next call retries."""
    compute = Compute()
    compute.gate.clear()
    compute.fail_with = RuntimeError("database gone")
    cache = SnapshotCache(compute, 60.0, Clock())
    callers = [asyncio.create_task(cache.get()) for _ in range(3)]
    await _until_waiting(compute, 1)
    compute.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert [str(r) for r in results] == ["database gone"] * 3
    compute.fail_with = None
    assert await cache.get() == 2


async def test_a_caller_going_away_does_not_cancel_the_shared_computation() -> None:
    """Cancelling the caller that started the computation leaves it running for the others."""
    compute = Compute()
    compute.gate.clear()
    cache = SnapshotCache(compute, 60.0, Clock())
    first = asyncio.create_task(cache.get())
    await _until_waiting(compute, 1)
    second = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    first.cancel()
    compute.gate.set()
    assert await second == 1
    assert first.cancelled()
    assert compute.calls == 1


async def test_aclose_cancels_a_running_computation() -> None:
    """At shutdown a computation still waiting is cancelled, and its caller sees that."""
    compute = Compute()
    compute.gate.clear()
    cache = SnapshotCache(compute, 60.0, Clock())
    caller = asyncio.create_task(cache.get())
    await _until_waiting(compute, 1)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await caller


def test_a_negative_window_is_refused() -> None:
    """max_age_s below zero is a programming error, said at construction."""

    async def compute() -> int:
        return 0

    with pytest.raises(ValueError, match="max_age_s"):
        SnapshotCache(compute, -1.0)
