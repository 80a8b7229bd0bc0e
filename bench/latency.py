"""End-to-end reaction time and throughput: input commit → task planned → attempt dispatched.

    .venv/bin/python bench/latency.py [--inputs 1000] [--bursts 10] [--throughput 10000]
                                      [--processes 2] [--json]

The orchestrator and the launcher run as the real main job, ``hrwsi run``, in subprocesses —
``--processes 1`` (the default): one ``hrwsi run --only orchestrator,launcher``;
``--processes 2``: ``hrwsi run --only orchestrator`` and ``hrwsi run --only launcher`` side by
side, as operators may deploy them — on a throw-away database
(``HRWSI_TEST_DATABASE_URL``, else an embedded server), with the local executor and a no-op
routine (``true``, declared as lasting 1 minute). This process only inserts inputs and reads
the figures, so it competes with the services for nothing but the machine. Three
measurements:

1. one by one: ``--inputs`` inputs, each its own INSERT transaction, every 10 ms;
2. bursts: ``--bursts`` bursts of 100 inputs committed back to back, one second apart;
3. throughput: ``--throughput`` inputs in one INSERT, timed until every task is processed
   (plan → dispatch → run → record → the next task of each VM chain).

Latency = first ``nomad_job_dispatch.dispatch_date`` (UTC) - ``input_meta.inserted_at``, both
written by PostgreSQL's clock: it includes the notification, the runner's coalescing, the whole
orchestrator pass (lock, backlog, planner, validator, write) and the launcher's claim.

Limits, chosen so that each phase measures what it names:

* Latency phases: ``t_max`` = the routine's duration (1 minute), so the planner gives each
  VM exactly one task and an input's task heads its own chain. With a larger ``t_max`` the
  fewest-VMs planner chains the inputs of one pass on a few VMs, and an input's dispatch
  then waits for its predecessors to *run* — a measure of the queue behind a busy VM, not
  of the system's reaction (with real 20-minute routines that wait is the plan, not latency).
  Quotas are large (the question is reaction time, not capacity).
* Throughput phase: a fresh runner with ``t_max`` = 10 x the duration, so the plan is
  chains of 10 tasks on 1,000 VMs for 10,000 inputs — every chain step (processed → next
  task ready → dispatched) is on the measured path — and local ``max_parallel`` 32 (the
  number of VMs busy at once on this machine; ``--parallel``).

The HR-WSI v1 baseline is computed, not run: its orchestrator waits 5 s
after an ``input_insertion`` notification before planning, and its launcher polls for ready
tasks every 30 s, so an input arriving at a uniformly random moment waits 5 s + U(0, 30) s
(+ the planning time, ignored in its favour): p50 = 20 s, p99 = 34.7 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from hrwsi import logs
from hrwsi.config import (
    Config,
    DatabaseConfig,
    ExecutorConfig,
    LocalExecutorConfig,
    ProcessingConditionConfig,
    RoutineConfig,
    SchedulingConfig,
)
from hrwsi.db import metrics
from hrwsi.testing import databases

V1_PLANNING_WAIT_S = 5.0
V1_LAUNCHER_POLL_S = 30.0
# Inputs and their input_meta rows (whose inserted_at the latency starts from), one statement,
# as the harvester writes them.
INSERT = (
    "WITH new_rows AS (INSERT INTO hrwsi.input (processing_condition_name, date, tile,"
    " measurement_day, input_path, mission) SELECT 'NOOP_PC', now(), '31TCH', 20260101,"
    " %s || '-' || g, 'S2' FROM generate_series(1, %s) AS g RETURNING id)"
    " INSERT INTO hrwsi.input_meta (input_id) SELECT id FROM new_rows"
)


def v1_expected_ms(quantile: float) -> float:
    """HR-WSI v1's delay quantile for a uniformly arriving input (planning time ignored)."""
    return (V1_PLANNING_WAIT_S + quantile * V1_LAUNCHER_POLL_S) * 1000


NOOP_DURATION_MIN = 1
QUOTA = 1_000_000  # cpu, ram, storage and VMs: large, capacity is not what is measured


def bench_config(data_dir: Path, parallel: int, chain: int) -> Config:
    """The bench's config: ``t_max`` = ``chain`` x the no-op's duration (tasks per VM at most)."""
    noop = RoutineConfig(
        name="NOOP",
        cpu=1,
        ram=1,
        storage=1,
        duration=NOOP_DURATION_MIN,
        input_type="NOOP_IN",
        product_data_type="NOOP_OUT",
        product_type_code="NOOP_PRODUCT",
        command=("true",),
    )
    return Config(
        database=DatabaseConfig(data_dir=data_dir),
        routines=(noop,),
        processing_conditions=(ProcessingConditionConfig(name="NOOP_PC", routine="NOOP"),),
        scheduling=SchedulingConfig(
            t_max_minutes=chain * NOOP_DURATION_MIN,
            cpu_max=QUOTA,
            ram_max=QUOTA,
            storage_max=QUOTA,
            vm_max=QUOTA,
            coalesce_ms=1.0,
            max_inputs_per_pass=100_000,
        ),
        executor=ExecutorConfig(
            poll_interval_s=30.0,
            local=LocalExecutorConfig(
                work_dir=data_dir / "runs", products_dir=data_dir / "data", max_parallel=parallel
            ),
        ),
    )


async def _latency_since(url: str, since: datetime) -> metrics.Latency:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await metrics.dispatch_latency(conn, since)


async def _wait_dispatched(url: str, since: datetime, expected: int, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.perf_counter() < deadline:
            if (await metrics.dispatch_latency(conn, since)).inputs >= expected:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"not every input was dispatched within {timeout_s} s")


async def _wait_processed(url: str, expected: int, timeout_s: float) -> float:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.perf_counter() - started < timeout_s:
            cur = await conn.execute(
                "SELECT count(*) FROM hrwsi.products AS p JOIN hrwsi.input AS i"
                " ON i.id = p.input_fk_id WHERE i.input_path LIKE 'through-%%'"
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= expected:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
    raise TimeoutError(f"not every task was processed within {timeout_s} s")


def _toml(config: Config) -> str:
    """The bench's configuration as the TOML file ``hrwsi run`` reads."""
    sched = config.scheduling
    local = config.executor.local
    noop = config.routines[0]
    return "\n".join(
        [
            "[database]",
            f"data_dir = {json.dumps(str(config.database.data_dir))}",
            "[[routines]]",
            f'name = "{noop.name}"',
            "cpu = 1",
            "ram = 1",
            "storage = 1",
            f"duration = {noop.duration}",
            f'input_type = "{noop.input_type}"',
            f'product_data_type = "{noop.product_data_type}"',
            f'product_type_code = "{noop.product_type_code}"',
            f"command = {json.dumps(list(noop.command))}",
            "[[processing_conditions]]",
            'name = "NOOP_PC"',
            f'routine = "{noop.name}"',
            "[scheduling]",
            f"t_max_minutes = {sched.t_max_minutes}",
            f"cpu_max = {sched.cpu_max}",
            f"ram_max = {sched.ram_max}",
            f"storage_max = {sched.storage_max}",
            f"vm_max = {sched.vm_max}",
            f"coalesce_ms = {sched.coalesce_ms}",
            f"max_inputs_per_pass = {sched.max_inputs_per_pass}",
            "[executor]",
            f"poll_interval_s = {config.executor.poll_interval_s}",
            "[executor.local]",
            f"work_dir = {json.dumps(str(local.work_dir))}",
            f"products_dir = {json.dumps(str(local.products_dir))}",
            f"max_parallel = {local.max_parallel}",
            "[logging]",
            'level = "WARNING"',
            "",
        ]
    )


@dataclass
class Services:
    """The ``hrwsi run`` subprocesses of one phase."""

    procs: list[subprocess.Popen[bytes]]

    def peak_rss_mb(self) -> float:
        peaks = []
        for proc in self.procs:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks, default=0.0)


async def _start(config: Config, url: str, processes: int) -> Services:
    # Beside the phase's runs and products: removed with them at the end.
    toml = config.database.data_dir / f"hrwsi-t{config.scheduling.t_max_minutes}.toml"
    await asyncio.to_thread(toml.write_text, _toml(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(HRWSI_DATABASE_URL=url, HRWSI_CONFIG=str(toml))
    groups = ["orchestrator,launcher"] if processes == 1 else ["orchestrator", "launcher"]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once per phase, not on a hot path
            [sys.executable, "-m", "hrwsi", "run", "--only", only],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for only in groups
    ]
    await asyncio.sleep(3.0)  # imports, listeners connected, first passes done
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"hrwsi run exited with {proc.returncode}")
    return Services(procs)


async def _stop(services: Services) -> float:
    peak = services.peak_rss_mb()
    for proc in services.procs:
        proc.send_signal(signal.SIGTERM)
    for proc in services.procs:
        await asyncio.to_thread(proc.wait, 30)
    return peak


async def run(args: argparse.Namespace) -> dict[str, float]:
    admin = databases.server_url()
    name = databases.unique_name("hrwsi_bench_latency")
    data_dir = Path(tempfile.mkdtemp(prefix="hrwsi-latency-"))
    latency_config = bench_config(data_dir, args.parallel, chain=1)
    url = await asyncio.to_thread(databases.create_migrated_database, admin, name, latency_config)
    results: dict[str, float] = {}
    try:
        services = await _start(latency_config, url, args.processes)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            # 1. one by one
            since = datetime.now(UTC)
            for i in range(args.inputs):
                await conn.execute(INSERT, (f"single-{i}", 1))
                await asyncio.sleep(0.01)
            await _wait_dispatched(url, since, args.inputs, 120)
            single = await _latency_since(url, since)
            # 2. bursts of 100
            since = datetime.now(UTC)
            for b in range(args.bursts):
                for i in range(100):
                    await conn.execute(INSERT, (f"burst-{b}-{i}", 1))
                await asyncio.sleep(1.0)
            await _wait_dispatched(url, since, args.bursts * 100, 120)
            bursts = await _latency_since(url, since)
        peak_latency = await _stop(services)
        # 3. throughput: chains of args.chain tasks
        throughput_config = bench_config(data_dir, args.parallel, args.chain)
        services = await _start(throughput_config, url, args.processes)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(INSERT, ("through", args.throughput))
            elapsed = await _wait_processed(url, args.throughput, 600)
        peak_throughput = await _stop(services)
        results = {
            "p50_ms": single.p50_ms or 0.0,
            "p99_ms": single.p99_ms or 0.0,
            "burst_p50_ms": bursts.p50_ms or 0.0,
            "burst_p99_ms": bursts.p99_ms or 0.0,
            "baseline_p50_ms": v1_expected_ms(0.5),
            "baseline_p99_ms": v1_expected_ms(0.99),
            "tasks_per_s": args.throughput / elapsed,
            "throughput_s": elapsed,
            "peak_rss_mb": max(peak_latency, peak_throughput),
            "bench_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        databases.drop_database(admin, name)
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--throughput", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=32, help="local executor max_parallel")
    parser.add_argument(
        "--chain", type=int, default=10, help="throughput phase: t_max in routine durations"
    )
    parser.add_argument(
        "--processes", type=int, choices=(1, 2), default=1, help="hrwsi run processes"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logs.configure("WARNING")
    r = asyncio.run(run(args))
    if args.json:
        keys = (
            "p50_ms",  # one by one
            "p99_ms",
            "baseline_p50_ms",
            "baseline_p99_ms",
            "tasks_per_s",
            "burst_p50_ms",
            "burst_p99_ms",
        )
        print(json.dumps({k: round(r[k], 3) for k in keys}))
        return
    print(f"{'measure':<34}{'hrwsi':>12}{'HR-WSI v1':>14}{'ratio':>10}")
    for label, ours, base in (
        (f"one by one ({args.inputs}) p50 ms", r["p50_ms"], r["baseline_p50_ms"]),
        (f"one by one ({args.inputs}) p99 ms", r["p99_ms"], r["baseline_p99_ms"]),
        (f"bursts of 100 ({args.bursts}) p50 ms", r["burst_p50_ms"], r["baseline_p50_ms"]),
        (f"bursts of 100 ({args.bursts}) p99 ms", r["burst_p99_ms"], r["baseline_p99_ms"]),
    ):
        print(f"{label:<34}{ours:>12.1f}{base:>14.0f}{base / max(ours, 1e-9):>9.0f}x")
    print(
        f"throughput: {args.throughput} no-op tasks (chains of {args.chain}, {args.parallel} in "
        f"parallel) planned, dispatched, run and recorded in "
        f"{r['throughput_s']:.1f} s = {r['tasks_per_s']:.0f} tasks/s"
    )
    mode = "one process" if args.processes == 1 else "orchestrator and launcher processes"
    print(f"services: hrwsi run as {mode}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"peak RSS: {r['peak_rss_mb']:.0f} MB per hrwsi run process,"
        f" bench {r['bench_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
