"""The local executor (the embedded default): each attempt is a subprocess on this machine.

A run is the routine's ``command`` (``{python}`` replaced by this interpreter) started under
the ``sh`` wrapper of :mod:`hrwsi.executors.local_wrapper` (~2 ms) in its own process group,
with the run contract's ``HRWSI_*`` variables
(:func:`hrwsi.executors.base.attempt_variables`) plus ``HRWSI_DATA_ROOT``. The environment is
otherwise minimal (``PATH``, ``HOME``, locale, ``PYTHONPATH``, ``VIRTUAL_ENV``, ``TMPDIR`` and
the names in ``passthrough_env``): the launcher's secrets (database URL, Nomad token) never
reach a routine.

Outcomes: exit 0 → processed; exit N > 0 → internal_error; cannot start (missing binary),
killed by a signal we did not send (OOM killer, an operator), timed out (``duration x
timeout_factor``, the whole process group is killed), cancelled or stopped at shutdown →
external_error, with a message. At most ``max_parallel`` runs at once; the others wait as
``SUBMITTED``.

Files in ``work_dir`` per attempt key: ``<key>.log`` (stdout and stderr; the dispatch's
``log_path``), ``<key>.state.json`` (pid, process group, process start time, deadline) and
``<key>.exit.json`` (written by the wrapper when the command ends, or by us when we kill it).

Crash safety, chosen rule: **reattach**. ``submit`` and ``status`` for a key that this
instance does not know look for its state file: a live process (same pid *and* same kernel
start time, so a recycled pid is not mistaken for it) is watched again by polling, with its
original deadline; a dead one is judged from its exit file. Only when there is no exit file
either (the whole group was killed while nobody watched) is the attempt reported as
external_error ("lost"), so the launcher retries it. The one unguarded window is between
spawning the process and writing its state file (about a millisecond: both happen in the
spawn thread, off the event loop): a crash exactly there leaves a run that a restarted launcher
does not see.

A run this executor no longer knows at all (no state file) is ``UNKNOWN``; the launcher
submits it again only if its submit was never acknowledged (``hrwsi.dispatch_ack``; ``submit``
returns once the run is queued). An acknowledged one is reported lost ("lost track") and
retried as the next attempt, so the same attempt never silently runs twice — in the window
above, the orphan may then overlap the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hrwsi.config import Config
from hrwsi.domain import errors
from hrwsi.executors.base import Attempt, Outcome, RunState, attempt_variables
from hrwsi.executors.local_wrapper import wrapper_argv, write_exit_file

log = logging.getLogger(__name__)

BASE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SYSTEMROOT",
)


@dataclass
class _Run:
    key: str
    log_path: Path
    state: RunState = RunState.SUBMITTED
    message: str = ""
    exit_code: int | None = None
    pid: int | None = None
    kill_reason: str | None = None
    watcher: asyncio.Task[None] | None = None
    holds_slot: bool = False

    def outcome(self) -> Outcome:
        return Outcome(
            key=self.key,
            state=self.state,
            message=self.message,
            exit_code=self.exit_code,
            run_id=self.key,
            log_path=str(self.log_path),
        )


def _proc_start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` (Linux ``/proc``), None when unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: int, start_ticks: int | None) -> bool:
    """Whether ``pid`` still runs the process we started (not a zombie, not a recycled pid)."""
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[-1].split()
        if not fields or fields[0] in ("Z", "X"):
            return False
        return start_ticks is None or _proc_start_ticks(pid) == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class LocalExecutor:
    """Runs attempts as local subprocesses; see the module docstring for the rules."""

    def __init__(
        self,
        work_dir: Path,
        data_root: Path,
        *,
        max_parallel: int = 4,
        timeout_factor: float = 3.0,
        poll_interval_s: float = 0.2,
        passthrough_env: Iterable[str] = (),
        python: str = sys.executable,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.work_dir = Path(work_dir)
        self.data_root = Path(data_root)
        self.max_parallel = max_parallel
        self.timeout_factor = timeout_factor
        self.poll_interval_s = poll_interval_s
        self.passthrough_env = tuple(passthrough_env)
        self.python = python
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._runs: dict[str, _Run] = {}
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        # FIFO, one waiter woken per freed slot (a Condition's notify_all woke every queued
        # run on every completion: quadratic with a thousand runs queued).
        self._slots = asyncio.Semaphore(max_parallel)
        self._closed = False
        self._reapers: set[asyncio.Future[int]] = set()
        # One thread starts every run, in submission order (created at the first run).
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hrwsi-spawn")

    @classmethod
    def from_config(cls, config: Config) -> LocalExecutor:
        """The executor ``config.executor.local`` describes (folders default under data_dir)."""
        local = config.executor.local
        base = config.database.data_dir
        return cls(
            work_dir=local.work_dir or base / "runs",
            data_root=local.products_dir or base / "data",
            max_parallel=local.max_parallel,
            timeout_factor=local.timeout_factor,
        )

    # -- files ---------------------------------------------------------------------------

    def _state_path(self, key: str) -> Path:
        return self.work_dir / f"{key}.state.json"

    def _exit_path(self, key: str) -> Path:
        return self.work_dir / f"{key}.exit.json"

    def _log_path(self, key: str) -> Path:
        return self.work_dir / f"{key}.log"

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # -- the Executor protocol -----------------------------------------------------------

    async def submit(self, attempt: Attempt) -> str:
        """Start the attempt (or queue it) unless its key is known here or on disk."""
        key = attempt.key
        if self._closed:
            raise errors.ExecutorTransient("the local executor is closed")
        if key in self._runs:
            return key
        if self._adopt(key) is not None:
            return key
        self._exit_path(key).unlink(missing_ok=True)
        run = _Run(key=key, log_path=self._log_path(key))
        self._runs[key] = run
        run.watcher = asyncio.create_task(self._launch(run, attempt), name=f"local-run-{key}")
        return key

    async def outcomes(self) -> AsyncIterator[Outcome]:
        """Started and terminal observations, in order, until ``aclose``."""
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # later iterators end too
                return
            yield item

    async def status(self, key: str) -> Outcome:
        run = self._runs.get(key) or self._adopt(key)
        if run is None:
            return Outcome(key=key, state=RunState.UNKNOWN, run_id=key)
        return run.outcome()

    async def cancel(self, key: str) -> None:
        run = self._runs.get(key)
        if run is None or run.state.is_terminal:
            return
        self._stop_run(run, "cancelled")
        if run.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run.watcher)

    async def forget(self, key: str) -> None:
        run = self._runs.get(key)
        if run is not None and not run.state.is_terminal:
            return
        self._runs.pop(key, None)
        self._state_path(key).unlink(missing_ok=True)
        self._exit_path(key).unlink(missing_ok=True)

    async def aclose(self) -> None:
        """Kill every run still going (recorded as "stopped at shutdown") and end outcomes()."""
        if self._closed:
            return
        self._closed = True
        for run in list(self._runs.values()):
            if not run.state.is_terminal:
                self._stop_run(run, "stopped when the launcher shut down")
        watchers = [r.watcher for r in self._runs.values() if r.watcher is not None]
        if watchers:
            _, pending = await asyncio.wait(watchers, timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._spawner.shutdown(wait=False)
        self._queue.put_nowait(None)

    # -- runs ----------------------------------------------------------------------------

    def _emit(self, run: _Run) -> None:
        self._queue.put_nowait(run.outcome())

    def _finish(self, run: _Run, state: RunState, message: str, exit_code: int | None) -> None:
        run.state, run.message, run.exit_code = state, message, exit_code
        log.info(
            "local_executor.run_ended",
            extra={"key": run.key, "state": state.value, "exit_code": exit_code},
        )
        self._emit(run)

    def _stop_run(self, run: _Run, reason: str) -> None:
        """Kill a run's process group (or drop it from the queue) and say why, durably."""
        if run.kill_reason is None:
            run.kill_reason = reason
        if run.pid is not None:
            write_exit_file(self._exit_path(run.key), {"killed": run.kill_reason})
            _kill_group(run.pid)
        elif not run.holds_slot and run.watcher is not None:
            run.watcher.cancel()  # still queued: it never starts

    def _environment(self, attempt: Attempt) -> dict[str, str]:
        env = {k: os.environ[k] for k in (*BASE_ENV, *self.passthrough_env) if k in os.environ}
        env.update(attempt_variables(attempt))
        env["HRWSI_DATA_ROOT"] = str(self.data_root)
        return env

    def _argv(self, attempt: Attempt) -> list[str]:
        command = [self.python if part == "{python}" else part for part in attempt.routine.command]
        return command

    async def _take_slot(self, run: _Run) -> None:
        await self._slots.acquire()
        run.holds_slot = True

    async def _release_slot(self, run: _Run) -> None:
        if not run.holds_slot:
            return
        run.holds_slot = False
        self._slots.release()

    async def _launch(self, run: _Run, attempt: Attempt) -> None:
        try:
            await self._take_slot(run)
        except asyncio.CancelledError:
            self._finish(
                run,
                RunState.EXTERNAL_ERROR,
                f"{run.kill_reason or 'cancelled'} before it started",
                None,
            )
            return
        try:
            await self._spawn_and_watch(run, attempt)
        finally:
            await self._release_slot(run)

    async def _spawn_and_watch(self, run: _Run, attempt: Attempt) -> None:
        argv = self._argv(attempt)
        if not argv:
            self._finish(
                run,
                RunState.EXTERNAL_ERROR,
                f"routine {attempt.routine.name!r} has no command to run locally",
                None,
            )
            return
        timeout_s = attempt.routine.duration_minutes * 60.0 * self.timeout_factor
        deadline = time.time() + timeout_s
        state = {
            "key": run.key,
            "started_at": time.time(),
            "deadline": deadline,
            "timeout_s": timeout_s,
            "log_path": str(run.log_path),
        }
        try:
            process = await self._start_recorded(
                run.key,
                wrapper_argv(self._exit_path(run.key), argv, run.log_path),
                self._environment(attempt),
                state,
            )
        except OSError as exc:
            self._finish(run, RunState.EXTERNAL_ERROR, f"cannot start the wrapper: {exc}", None)
            return
        run.pid = process.pid
        if run.kill_reason is not None:  # cancelled while spawning
            self._stop_run(run, run.kill_reason)
        run.state = RunState.STARTED
        log.info("local_executor.run_started", extra={"key": run.key, "pid": process.pid})
        self._emit(run)
        try:
            wrapper_rc = await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            self._stop_run(run, f"timed out after {timeout_s:.1f}s; process group killed")
            wrapper_rc = await process.wait()
        except asyncio.CancelledError:
            _kill_group(process.pid)
            raise
        self._judge(run, wrapper_rc)

    async def _start_recorded(
        self, key: str, argv: list[str], env: dict[str, str], state: dict[str, Any]
    ) -> _Process:
        """Start the wrapper and write its state file, off the event loop.

        Forking, exec-ing and creating the file cost about a millisecond per run (several
        under load), time the event loop — the next input's planning and dispatch — should
        not wait for. With pidfds both happen in the spawn thread (the fork releases the
        GIL); a run cancelled meanwhile is killed and reaped as soon as it exists."""
        if not _pidfd_works():
            process = await _start(argv, env, self.work_dir)
            try:
                await asyncio.to_thread(self._write_state, key, process.pid, state)
            except asyncio.CancelledError:
                self._abandon(process)
                raise
            return process
        loop = asyncio.get_running_loop()
        spawned = loop.run_in_executor(self._spawner, self._spawn_and_write, key, argv, env, state)
        try:
            return await asyncio.shield(spawned)
        except asyncio.CancelledError:
            spawned.add_done_callback(self._abandon_spawned)
            raise

    def _spawn_and_write(
        self, key: str, argv: list[str], env: dict[str, str], state: dict[str, Any]
    ) -> _Child:
        """In the spawn thread: start the wrapper, then record it (killed if that fails)."""
        child = _start_with_pidfd(argv, env, self.work_dir)
        try:
            self._write_state(key, child.pid, state)
        except OSError:
            child.kill_and_reap()
            raise
        return child

    def _abandon_spawned(self, spawned: asyncio.Future[_Child]) -> None:
        if not spawned.cancelled() and spawned.exception() is None:
            self._abandon(spawned.result())

    def _abandon(self, process: _Process) -> None:
        """Kill a run nobody will watch, and reap it (no zombie left behind)."""
        _kill_group(process.pid)
        reaper = asyncio.ensure_future(process.wait())
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    def _write_state(self, key: str, pid: int, state: dict[str, Any]) -> None:
        # The process cannot have been reaped yet (its watcher starts after this), so its
        # /proc entry is still there even if it already ended.
        record = {**state, "pid": pid, "pgid": pid, "start_ticks": _proc_start_ticks(pid)}
        tmp = self._state_path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self._state_path(key))

    def _judge(self, run: _Run, wrapper_rc: int | None) -> None:
        """Turn the exit file (and the wrapper's own code, when we have it) into an outcome."""
        record = self._read_json(self._exit_path(run.key)) or {}
        if run.kill_reason is not None:
            self._finish(run, RunState.EXTERNAL_ERROR, run.kill_reason, None)
        elif "killed" in record:
            self._finish(run, RunState.EXTERNAL_ERROR, str(record["killed"]), None)
        elif "cannot_start" in record:
            self._finish(run, RunState.EXTERNAL_ERROR, str(record["cannot_start"]), None)
        elif isinstance(record.get("returncode"), int):
            rc = int(record["returncode"])
            if rc == 0:
                self._finish(run, RunState.PROCESSED, "exit code 0", 0)
            elif rc > 0:
                self._finish(run, RunState.INTERNAL_ERROR, f"exit code {rc}", rc)
            else:
                self._finish(
                    run, RunState.EXTERNAL_ERROR, f"killed by signal {_signal_name(-rc)}", rc
                )
        elif wrapper_rc is not None and wrapper_rc < 0:
            self._finish(
                run,
                RunState.EXTERNAL_ERROR,
                f"killed by signal {_signal_name(-wrapper_rc)}",
                wrapper_rc,
            )
        else:
            self._finish(
                run,
                RunState.EXTERNAL_ERROR,
                "the run ended without leaving an exit code (lost)",
                wrapper_rc,
            )

    def _adopt(self, key: str) -> _Run | None:
        """Take over a run another (crashed) launcher started, from its state file."""
        if self._closed:
            return None
        state = self._read_json(self._state_path(key))
        if state is None:
            return None
        run = _Run(key=key, log_path=Path(str(state.get("log_path") or self._log_path(key))))
        self._runs[key] = run
        try:
            run.pid = int(state["pid"])
        except (KeyError, TypeError, ValueError):
            # A state file we cannot read names no process we could watch: the run is lost
            # (external error, retried) rather than a crash of every reconcile on this key.
            self._finish(run, RunState.EXTERNAL_ERROR, "unreadable run state file (lost)", None)
            return run
        start_ticks = state.get("start_ticks")
        if _alive(run.pid, start_ticks if isinstance(start_ticks, int) else None):
            run.state = RunState.STARTED
            log.info("local_executor.reattached", extra={"key": key, "pid": run.pid})
            self._emit(run)
            deadline = float(state.get("deadline") or time.time())
            run.watcher = asyncio.create_task(
                self._poll(run, deadline, start_ticks if isinstance(start_ticks, int) else None),
                name=f"local-reattach-{key}",
            )
        else:
            self._judge(run, None)
        return run

    async def _poll(self, run: _Run, deadline: float, start_ticks: int | None) -> None:
        assert run.pid is not None
        while _alive(run.pid, start_ticks):
            if time.time() >= deadline:
                self._stop_run(run, "timed out (reattached run); process group killed")
            await asyncio.sleep(self.poll_interval_s)
        self._judge(run, None)


class _Child:
    """A started wrapper: its pid and its exit status, seen through a pidfd (Linux) — no
    watcher thread, no transport: the event loop is told when the process ends."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.pid = popen.pid
        self._popen = popen
        self._exited: asyncio.Future[int] | None = None
        self._pidfd = os.pidfd_open(popen.pid)

    def _watch(self) -> asyncio.Future[int]:
        """Start watching (at the first wait: until then an ended run stays a zombie)."""
        if self._exited is None:
            loop = asyncio.get_running_loop()
            self._exited = loop.create_future()
            loop.add_reader(self._pidfd, self._reap, loop)
        return self._exited

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        code = self._popen.poll()
        if code is None:
            return
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._watch())

    def kill_and_reap(self) -> None:
        """Blocking: kill the group and wait for the wrapper (only before anyone watches it)."""
        _kill_group(self.pid)
        self._popen.wait()
        os.close(self._pidfd)


class _Process(Protocol):
    pid: int

    async def wait(self) -> int: ...


async def _start(argv: list[str], env: dict[str, str], cwd: Path) -> _Process:
    """Start ``argv`` in a new session, no stdin or stdout (the wrapper opens the log)."""
    if _pidfd_works():
        return _start_with_pidfd(argv, env, cwd)
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def _start_with_pidfd(argv: list[str], env: dict[str, str], cwd: Path) -> _Child:
    devnull = _devnull()
    popen = subprocess.Popen(
        argv,
        stdin=devnull,
        stdout=devnull,
        stderr=devnull,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        return _Child(popen)
    except OSError:
        _kill_group(popen.pid)
        popen.wait()
        raise


@functools.cache
def _devnull() -> int:
    """One read-write descriptor of /dev/null for every run (not inherited: dup2-ed)."""
    return os.open(os.devnull, os.O_RDWR)


@functools.cache
def _pidfd_works() -> bool:
    """Whether this kernel and Python give pidfds (Linux >= 5.3); else asyncio's watcher."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
