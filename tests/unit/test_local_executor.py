"""The local executor with real subprocesses: exit codes, timeouts, signals, limits, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hrwsi.executors.base import Attempt, Outcome, RoutineSpec, RunState
from hrwsi.executors.local import LocalExecutor


def routine(code: str, *, duration: int = 1, name: str = "R") -> RoutineSpec:
    return RoutineSpec(
        name=name,
        cpu=1,
        ram=1,
        storage=1,
        duration_minutes=duration,
        command=("{python}", "-c", textwrap.dedent(code)),
    )


def attempt(spec: RoutineSpec, task_id: int = 1, n: int = 1, **meta: str) -> Attempt:
    return Attempt(
        task_id=task_id,
        attempt=n,
        routine=spec,
        vm_name="vm-1",
        input_paths=("/in/a", "/in/b"),
        product_path="/HRWSI/L2A/X/p",
        meta=meta,
    )


def read(path: str | Path | None) -> str:
    return Path(path or "").read_text()


def gone(pid: int) -> bool:
    """The process has exited (no /proc entry, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


async def wait_until(check: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll ``check`` (a sync predicate on files or processes) until true or timeout."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


async def terminal(executor: LocalExecutor, key: str, timeout: float = 20) -> Outcome:
    """Wait on the outcome stream for the terminal outcome of ``key``."""

    async def _wait() -> Outcome:
        async for outcome in executor.outcomes():
            if outcome.key == key and outcome.state.is_terminal:
                return outcome
        raise AssertionError("stream ended")

    return await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
async def executor(tmp_path: Path):
    ex = LocalExecutor(
        tmp_path / "work",
        tmp_path / "data",
        max_parallel=2,
        timeout_factor=1.0,
        poll_interval_s=0.05,
    )
    yield ex
    await ex.aclose()


async def test_success_writes_log_and_passes_the_run_contract(executor: LocalExecutor, monkeypatch):
    """Exit 0 is processed; the routine sees the HRWSI_* variables and no launcher secret."""
    monkeypatch.setenv("HRWSI_DATABASE_URL", "postgresql://secret@db/x")
    code = """
        import json, os
        keys = sorted(k for k in os.environ if k.startswith("HRWSI_"))
        print(json.dumps({k: os.environ[k] for k in keys}))
    """
    a = attempt(routine(code), task_id=7, n=2, tile="31TCH")
    assert await executor.submit(a) == a.key
    out = await terminal(executor, a.key)
    assert out.state is RunState.PROCESSED and out.exit_code == 0
    seen = json.loads(read(out.log_path).strip().splitlines()[-1])
    assert seen["HRWSI_TASK_ID"] == "7" and seen["HRWSI_ATTEMPT"] == "2"
    assert json.loads(seen["HRWSI_INPUT_PATHS"]) == ["/in/a", "/in/b"]
    assert seen["HRWSI_INPUT_PATH"] == "/in/a" and seen["HRWSI_VM_NAME"] == "vm-1"
    assert seen["HRWSI_META_TILE"] == "31TCH" and seen["HRWSI_ROUTINE"] == "R"
    assert seen["HRWSI_DATA_ROOT"] == str(executor.data_root)
    assert "HRWSI_DATABASE_URL" not in seen
    assert (await executor.status(a.key)).state is RunState.PROCESSED


async def test_non_zero_exit_is_an_internal_error(executor: LocalExecutor):
    """A routine that exits 3 ends as internal_error with the code in the message."""
    a = attempt(routine("import sys; print('boom'); sys.exit(3)"))
    await executor.submit(a)
    out = await terminal(executor, a.key)
    assert out.state is RunState.INTERNAL_ERROR and out.exit_code == 3
    assert "exit code 3" in out.message
    assert "boom" in read(out.log_path)


async def test_hang_times_out_and_kills_the_process_group(tmp_path: Path):
    """A routine past duration x timeout_factor is killed with its children: external_error."""
    ex = LocalExecutor(
        tmp_path / "w", tmp_path / "d", timeout_factor=0.6 / 60, poll_interval_s=0.05
    )
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """
    a = attempt(routine(code))
    try:
        await ex.submit(a)
        out = await terminal(ex, a.key)
        assert out.state is RunState.EXTERNAL_ERROR and "timed out" in out.message
        grandchild = int(read(pid_file))
        assert await wait_until(lambda: gone(grandchild))
    finally:
        await ex.aclose()


async def test_killed_by_a_signal_is_an_external_error(executor: LocalExecutor):
    """A routine killed by a signal nobody in hrwsi sent (OOM killer) is external_error."""
    a = attempt(routine("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    await executor.submit(a)
    out = await terminal(executor, a.key)
    assert out.state is RunState.EXTERNAL_ERROR and "SIGKILL" in out.message


async def test_missing_binary_is_an_external_error(executor: LocalExecutor):
    """A command that cannot start is external_error, saying which binary."""
    spec = RoutineSpec(
        name="R",
        cpu=1,
        ram=1,
        storage=1,
        duration_minutes=1,
        command=("/nonexistent/maja-binary", "--run"),
    )
    a = attempt(spec)
    await executor.submit(a)
    out = await terminal(executor, a.key)
    assert out.state is RunState.EXTERNAL_ERROR and "maja-binary" in out.message


async def test_cancel_kills_a_running_attempt(executor: LocalExecutor):
    """cancel() kills a running attempt, which ends as external_error 'cancelled'."""
    a = attempt(routine("import time; time.sleep(60)"))
    await executor.submit(a)
    async for o in executor.outcomes():
        if o.state is RunState.STARTED:
            break
    await asyncio.wait_for(executor.cancel(a.key), 10)
    out = await executor.status(a.key)
    assert out.state is RunState.EXTERNAL_ERROR and "cancelled" in out.message


async def test_submit_is_idempotent_on_the_key(executor: LocalExecutor, tmp_path: Path):
    """Submitting the same attempt twice runs it once."""
    counter = tmp_path / "count"
    a = attempt(routine(f"open({str(counter)!r}, 'a').write('x')"))
    await executor.submit(a)
    await executor.submit(a)
    await terminal(executor, a.key)
    await executor.submit(a)
    assert read(counter) == "x"


async def test_max_parallel_is_respected(tmp_path: Path):
    """With max_parallel=2, five runs never overlap more than two at a time; others wait."""
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", max_parallel=2, poll_interval_s=0.05)
    spans = tmp_path / "spans"
    spans.mkdir()
    code = f"""
        import os, time
        start = time.time(); time.sleep(0.4)
        open(os.path.join({str(spans)!r}, os.environ["HRWSI_TASK_ID"]), "w").write(
            f"{{start}} {{time.time()}}")
    """
    attempts = [attempt(routine(code), task_id=i) for i in range(5)]
    try:
        for a in attempts:
            await ex.submit(a)
        states = [(await ex.status(a.key)).state for a in attempts]
        assert states.count(RunState.SUBMITTED) == 5
        ended: set[str] = set()

        async def _drain() -> None:
            async for o in ex.outcomes():
                if o.state.is_terminal:
                    ended.add(o.key)
                    if len(ended) == 5:
                        return

        await asyncio.wait_for(_drain(), 30)
    finally:
        await ex.aclose()
    intervals = [tuple(map(float, read(spans / p).split())) for p in sorted(os.listdir(spans))]
    assert len(intervals) == 5
    for t, _ in intervals:
        overlapping = sum(1 for s, e in intervals if s <= t < e)
        assert overlapping <= 2


async def test_aclose_stops_runs_and_a_restart_reports_them(tmp_path: Path):
    """Shutdown kills running attempts; the next executor reports them as external_error."""
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", poll_interval_s=0.05)
    a = attempt(routine("import time; time.sleep(60)"))
    await ex.submit(a)
    async for o in ex.outcomes():
        if o.state is RunState.STARTED:
            break
    await ex.aclose()
    again = LocalExecutor(tmp_path / "w", tmp_path / "d", poll_interval_s=0.05)
    try:
        out = await again.status(a.key)
        assert out.state is RunState.EXTERNAL_ERROR and "shut down" in out.message
    finally:
        await again.aclose()


_ORPHAN_MAKER = """
import asyncio, sys, textwrap
from collections.abc import Callable
from pathlib import Path
from hrwsi.executors.base import Attempt, RoutineSpec
from hrwsi.executors.local import LocalExecutor

async def main():
    work, data, code = sys.argv[1], sys.argv[2], sys.argv[3]
    ex = LocalExecutor(Path(work), Path(data))
    spec = RoutineSpec(name="R", cpu=1, ram=1, storage=1, duration_minutes=1,
                       command=("{python}", "-c", code))
    a = Attempt(task_id=9, attempt=1, routine=spec, vm_name="vm", input_paths=("/i",),
                product_path="/p")
    await ex.submit(a)
    while not (Path(work) / (a.key + ".state.json")).exists():
        await asyncio.sleep(0.01)
    print("submitted", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _crashing_launcher(tmp_path: Path, code: str) -> None:
    """Start an executor in another process, let it submit, then SIGKILL that process."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_MAKER, str(tmp_path / "w"), str(tmp_path / "d"), code],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "submitted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


async def test_restart_reattaches_to_a_live_run(tmp_path: Path):
    """After the launcher process dies, a new executor watches the live attempt to its end."""
    marker = tmp_path / "go"
    code = (
        f"import os, sys, time\nwhile not os.path.exists({str(marker)!r}): time.sleep(0.05)\n"
        "sys.exit(5)"
    )
    _crashing_launcher(tmp_path, code)
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", poll_interval_s=0.05)
    try:
        key = "task-9-attempt-1"
        assert (await ex.status(key)).state is RunState.STARTED
        marker.touch()
        out = await terminal(ex, key)
        assert out.state is RunState.INTERNAL_ERROR and out.exit_code == 5
    finally:
        await ex.aclose()


async def test_restart_reads_the_exit_code_of_a_run_that_ended_unwatched(tmp_path: Path):
    """A run that ended while no launcher watched keeps its exit code (from the wrapper's file)."""
    _crashing_launcher(tmp_path, "print('done')")
    key = "task-9-attempt-1"
    exit_file = tmp_path / "w" / f"{key}.exit.json"
    assert await wait_until(exit_file.exists, 15)
    state = json.loads(read(tmp_path / "w" / f"{key}.state.json"))
    assert await wait_until(lambda: gone(state["pid"]))
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", poll_interval_s=0.05)
    try:
        out = await ex.status(key)
        assert out.state is RunState.PROCESSED
        await ex.forget(key)
        assert (await ex.status(key)).state is RunState.UNKNOWN
    finally:
        await ex.aclose()


async def test_restart_reports_a_run_lost_without_exit_code(tmp_path: Path):
    """A run whose whole process group was killed while unwatched is reported external_error."""
    _crashing_launcher(tmp_path, "import time; time.sleep(60)")
    key = "task-9-attempt-1"
    state = json.loads(read(tmp_path / "w" / f"{key}.state.json"))
    os.killpg(state["pgid"], signal.SIGKILL)
    assert await wait_until(lambda: gone(state["pid"]))
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", poll_interval_s=0.05)
    try:
        out = await ex.status(key)
        assert out.state is RunState.EXTERNAL_ERROR and "lost" in out.message
    finally:
        await ex.aclose()


async def test_cancel_of_a_queued_attempt_never_starts_it(tmp_path: Path):
    """A run still waiting for a slot is cancelled without ever starting."""
    ex = LocalExecutor(tmp_path / "w", tmp_path / "d", max_parallel=1, poll_interval_s=0.05)
    marker = tmp_path / "second-ran"
    busy = attempt(routine("import time; time.sleep(60)"), task_id=1)
    queued = attempt(routine(f"open({str(marker)!r}, 'w')"), task_id=2)
    try:
        await ex.submit(busy)
        await ex.submit(queued)
        async for o in ex.outcomes():
            if o.key == busy.key and o.state is RunState.STARTED:
                break
        assert (await ex.status(queued.key)).state is RunState.SUBMITTED
        await ex.cancel(queued.key)
        out = await ex.status(queued.key)
        assert out.state is RunState.EXTERNAL_ERROR and "before it started" in out.message
        await ex.cancel(busy.key)
        assert not await wait_until(marker.exists, 0.5)
    finally:
        await ex.aclose()


def test_from_config_places_runs_and_data_under_the_data_dir(tmp_path: Path):
    """Without explicit folders, runs and data live under database.data_dir."""
    from hrwsi.config import Config, DatabaseConfig, ExecutorConfig, LocalExecutorConfig

    cfg = Config(
        database=DatabaseConfig(data_dir=tmp_path),
        executor=ExecutorConfig(local=LocalExecutorConfig(max_parallel=3, timeout_factor=2)),
    )
    ex = LocalExecutor.from_config(cfg)
    assert (ex.work_dir, ex.data_root) == (tmp_path / "runs", tmp_path / "data")
    assert (ex.max_parallel, ex.timeout_factor) == (3, 2)


async def test_submit_after_close_is_a_transient_error(tmp_path: Path):
    """A closed executor refuses new work with a translated, retryable error."""
    from hrwsi.domain import errors

    ex = LocalExecutor(tmp_path / "w", tmp_path / "d")
    await ex.aclose()
    with pytest.raises(errors.ExecutorTransient):
        await ex.submit(attempt(routine("pass")))


async def test_restart_reports_an_unreadable_state_file_as_lost(tmp_path: Path):
    """A state file without a usable pid is a lost run (external_error), not a crash."""
    work = tmp_path / "w"
    work.mkdir(parents=True)
    key = "task-5-attempt-1"
    (work / f"{key}.state.json").write_text(json.dumps({"key": key, "pgid": 1}))
    ex = LocalExecutor(work, tmp_path / "d", poll_interval_s=0.05)
    try:
        out = await ex.status(key)
        assert out.state is RunState.EXTERNAL_ERROR and "lost" in out.message
    finally:
        await ex.aclose()


async def test_a_run_cancelled_while_it_is_being_spawned_is_killed_and_reaped(tmp_path: Path):
    """The spawn happens in the spawn thread: a run whose watcher is cancelled before the
    thread has started it must not be left running (or as a zombie) once the thread does."""
    ex = LocalExecutor(tmp_path / "work", tmp_path / "data", max_parallel=2)
    gate = threading.Event()
    ex._spawner.submit(gate.wait, 10)  # the spawn thread is busy: the next spawn waits
    a = attempt(routine("import time; time.sleep(60)"), task_id=3)
    await ex.submit(a)
    await asyncio.sleep(0.1)  # the run holds its slot and waits on the spawn thread
    run = ex._runs[a.key]
    assert run.pid is None and run.watcher is not None
    run.watcher.cancel()
    gate.set()
    state = tmp_path / "work" / f"{a.key}.state.json"
    assert await wait_until(state.exists)
    pid = json.loads(state.read_text())["pid"]
    assert await wait_until(lambda: not Path(f"/proc/{pid}").exists())  # killed and reaped
    await ex.aclose()


async def test_runs_are_started_by_the_spawn_thread_not_the_event_loop(tmp_path: Path):
    """Fork and exec happen in the spawn thread: while it is held, the loop goes on turning
    and no run has been started; released, every run starts and ends."""
    ex = LocalExecutor(tmp_path / "work", tmp_path / "data", max_parallel=8)
    gate = threading.Event()
    ex._spawner.submit(gate.wait, 10)
    attempts = [attempt(routine("pass"), task_id=i) for i in range(8)]
    for a in attempts:
        await ex.submit(a)
    await asyncio.sleep(0.2)
    assert [ex._runs[a.key].pid for a in attempts] == [None] * 8
    gate.set()

    async def ended() -> dict[str, RunState]:
        states: dict[str, RunState] = {}
        async for outcome in ex.outcomes():
            if outcome.state.is_terminal:
                states[outcome.key] = outcome.state
                if len(states) == len(attempts):
                    return states
        raise AssertionError("stream ended")

    states = await asyncio.wait_for(ended(), 20)
    assert states == {a.key: RunState.PROCESSED for a in attempts}
    await ex.aclose()
