"""Nomad executor benchmark: many attempts through the Nomad stand-in, over real HTTP.

    .venv/bin/python bench/nomad_executor.py [--runs 400] [--baseline 40]

The stand-in runs in the same process and event loop (so figures include its own cost).
Each attempt is a batch job that starts after 50 ms and exits 0 after 200 ms. Printed for a
baseline run and the full run, then with the event stream cut every 0.5 s: time to submit,
time until every outcome is terminal, runs/s, HTTP requests per run, outcomes lost, and the
ratios against the baseline. Peak RSS (the whole process) is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.base import Attempt, RoutineSpec, RunState
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.testing.nomad_server import NomadStandIn, Script

ROUTINE = RoutineSpec("MAJA", 1, 1, 1, 1, docker_image="reg/maja:4")


@dataclass
class Figures:
    label: str
    runs: int
    submit_s: float
    done_s: float
    requests: int
    lost: int

    @property
    def per_s(self) -> float:
        return self.runs / self.done_s

    @property
    def requests_per_run(self) -> float:
        return self.requests / self.runs


async def one_pass(label: str, runs: int, cut_every_s: float | None) -> Figures:
    async with NomadStandIn(nodes=[f"vm-{i}" for i in range(10)], heartbeat_s=1.0) as nomad:
        nomad.rule = lambda job: Script(start_delay_s=0.05, run_s=0.2)
        settings = NomadExecutorConfig(
            address=nomad.address, sweep_interval_s=2.0, backoff_initial_s=0.05
        )
        executor = NomadExecutor(settings)
        attempts = [
            Attempt(i, 1, ROUTINE, f"vm-{i % 10}", ("/in",), f"/out/{i}") for i in range(runs)
        ]
        pending = {a.key for a in attempts}
        finished = asyncio.Event()

        async def consume() -> None:
            async for outcome in executor.outcomes():
                if outcome.state.is_terminal:
                    assert outcome.state is RunState.PROCESSED, outcome
                    pending.discard(outcome.key)
                    if not pending:
                        finished.set()

        async def cutter() -> None:
            while cut_every_s is not None:
                await asyncio.sleep(cut_every_s)
                nomad.cut_streams()

        consumer = asyncio.create_task(consume())
        cuts = asyncio.create_task(cutter())
        limit = asyncio.Semaphore(16)

        async def submit(a: Attempt) -> None:
            async with limit:
                await executor.submit(a)

        started = time.perf_counter()
        await asyncio.gather(*(submit(a) for a in attempts))
        submitted = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), 120)
        done = time.perf_counter() - started
        for task in (consumer, cuts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await executor.aclose()
        return Figures(label, runs, submitted, done, len(nomad.requests), len(pending))


async def main(runs: int, baseline: int) -> None:
    results = [
        await one_pass("baseline", baseline, None),
        await one_pass("full", runs, None),
        await one_pass("full, stream cut every 0.5 s", runs, 0.5),
    ]
    base = results[0]
    print(
        f"{'pass':32} {'runs':>5} {'submit s':>9} {'done s':>7} {'runs/s':>7} "
        f"{'req/run':>8} {'lost':>5} {'runs/s vs base':>15}"
    )
    for r in results:
        print(
            f"{r.label:32} {r.runs:5d} {r.submit_s:9.2f} {r.done_s:7.2f} {r.per_s:7.1f} "
            f"{r.requests_per_run:8.2f} {r.lost:5d} {r.per_s / base.per_s:15.2f}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB (executor + stand-in in one process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--baseline", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.baseline))
