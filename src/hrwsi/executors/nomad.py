"""Run attempts as Nomad batch jobs, one job per attempt, pinned to the planned VM.

**One plain batch job per attempt, deterministic id** ``<job_prefix>-<attempt.key>``,
registered with ``EnforceIndex: true, JobModifyIndex: 0``. Chosen over a parameterized parent
per VM plus dispatch with an idempotency token (CONTRACT.md §1, §2, §9) because:

- dispatch meta cannot pick the host (constraints read node data only), so pinning by
  dispatch needs one parent per VM, registered and kept in step with an elastic VM pool;
- a dispatched child's id is random: after a crash between submit and record the launcher
  would have to search the children for its token, whereas here ``status(key)`` is one
  ``GET /v1/job/<prefix>-<key>``;
- a repeated register gets 500 ``Enforcing job modify index 0: job already exists``, which
  :meth:`NomadExecutor.submit` treats as "already submitted": never a second run. Like a
  dispatch token, this protection ends when the job is purged or GC'd, so the launcher
  de-duplicates in PostgreSQL too (it purges through :meth:`forget` only after recording).

**The job.** Docker driver with the routine's image (its own entrypoint: the routine's
``command`` is for local runs); ``CPU`` = cores * ``cpu_mhz_per_core`` MHz (or ``Cores`` with
``use_cores``), ``MemoryMB`` = ram GB * 1024, the group's ``EphemeralDisk.SizeMB`` = storage GB
* 1024 (task-level ``DiskMB`` would be dropped silently); a constraint
``${attr.unique.hostname} = <vm_name>`` unless ``pin_to_vm`` is off; restarts and reschedules
off, and no replacement of a *lost* allocation (below). Job ``Meta`` carries
``HRWSI_TASK_ID``, ``HRWSI_ATTEMPT``, ``HRWSI_ROUTINE``,
``HRWSI_VM_NAME``, ``HRWSI_INPUT_PATH``, ``HRWSI_INPUT_PATHS`` (JSON list),
``HRWSI_PRODUCT_PATH`` and ``HRWSI_META_<KEY>``; the task ``Env`` maps each to
``${NOMAD_META_<name>}`` so the routine sees the same variables as a local run.

**Lost nodes.** Nomad replaces an allocation lost with its node whatever the reschedule
policy says (that policy governs failed allocations). The group therefore says
``"Disconnect": {"Replace": false}`` (the ``disconnect`` block, Nomad >= 1.8) and
``"PreventRescheduleOnLost": true`` (Nomad 1.7.2 to 1.x; deprecated by 1.8 in favour of
the former, the two agree), and older servers ignore fields they do not know. Whatever the
version, a run with a lost allocation is reported as an external error only after its job
has been stopped (deregistered, not purged), so neither a replacement nor anything else of
that attempt runs once the launcher can retry it; an attempt with a lost allocation stays
lost even when Nomad has placed a replacement meanwhile.

**Secrets** are never in the spec: for each name in ``passthrough_env`` a template reads the
value from the Nomad variable at ``secrets_variable_path`` (default ``nomad/jobs``, readable by
every job of the namespace without an extra policy) into the task environment. The values
get there by :meth:`NomadExecutor.publish_secrets` (from the environment the composition
root hands in) or by an operator (``nomad var put nomad/jobs NAME=…``). Both need Nomad
variables (Nomad >= 1.4): :meth:`NomadExecutor.check_variables` refuses to start on a
cluster without them. The ACL token only travels in the
``X-Nomad-Token`` header.

**Outcomes** come from the event stream (topics ``Job`` and ``Allocation``, filtered here by
the job prefix since Nomad filter keys match whole ids) and from the reconcile path, a sweep
that runs continuously and after every stream (re)connection, so nothing that happened while
the stream was cut or Nomad unreachable is missed. The sweep is a blocking query on
``GET /v1/jobs?prefix=<job_prefix>-`` (it wakes when one of our jobs changes, at the latest
after ``sweep_interval_s``) and reads back (``status``) only the runs that moved. Mapping per
CONTRACT.md §7, see :func:`classify_allocation`. A run no node can take within
``placement_timeout_s`` is stopped and reported as an external error (placement); it is
purged, like every run, by :meth:`forget` once the launcher has recorded it.

**Restart.** The executor keeps only an in-memory view. A restarted launcher calls
``status(key)`` for its open dispatches: the job is read back and followed again. A 404 for
a key this process submitted or saw is ``EXTERNAL_ERROR`` ("lost track: garbage-collected
before its outcome was recorded"); for a key it never saw it is ``UNKNOWN``: never
submitted, or purged/GC'd before this process started. The launcher tells the two apart by
its own record of the acknowledged submit (``hrwsi.dispatch_ack``): only a submit Nomad
never acknowledged is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from hrwsi.config import Config, NomadExecutorConfig
from hrwsi.domain import errors
from hrwsi.executors import nomad_client
from hrwsi.executors.base import Attempt, Outcome, RunState, attempt_variables

log = logging.getLogger(__name__)

_NS = 1_000_000_000
LOST_TRACK = "lost track: garbage-collected before its outcome was recorded"
GROUP = "run"
TASK = "routine"
FAILURE_TYPES = (
    "Driver Failure",
    "Setup Failure",
    "Failed Artifact Download",
    "Failed Validation",
    "Task hook failed",
)
_FAILURE_DETAILS = (
    "driver_error",
    "setup_error",
    "download_error",
    "validation_error",
    "task_hook_error",
)


def job_id_of(settings: NomadExecutorConfig, key: str) -> str:
    """The Nomad job id of the attempt with this key."""
    return f"{settings.job_prefix}-{key}"


def secrets_template(names: Sequence[str], variable_path: str) -> str:
    """A Nomad template writing ``NAME=value`` lines read from a Nomad variable (names only)."""
    lines = "".join(f"{name}={{{{ .{name} }}}}\n" for name in names)
    return f'{{{{ with nomadVar "{variable_path}" }}}}\n{lines}{{{{ end }}}}\n'


def job_spec(attempt: Attempt, settings: NomadExecutorConfig) -> dict[str, Any]:
    """The JSON job that runs this attempt (see the module docstring)."""
    routine = attempt.routine
    job_id = job_id_of(settings, attempt.key)
    meta = attempt_variables(attempt)  # the names a local run gets as environment
    resources: dict[str, Any] = {"MemoryMB": routine.ram * 1024}
    if settings.use_cores:
        resources["Cores"] = routine.cpu
    else:
        resources["CPU"] = routine.cpu * settings.cpu_mhz_per_core
    task: dict[str, Any] = {
        "Name": TASK,
        "Driver": "docker",
        "Config": {"image": routine.docker_image},
        "Env": {name: f"${{NOMAD_META_{name}}}" for name in meta},
        "Resources": resources,
        "Meta": {},
    }
    if settings.passthrough_env:
        task["Templates"] = [
            {
                "EmbeddedTmpl": secrets_template(
                    settings.passthrough_env, settings.secrets_variable_path
                ),
                "DestPath": "secrets/hrwsi.env",
                "Envvars": True,
                "ChangeMode": "noop",
            }
        ]
    job: dict[str, Any] = {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Namespace": settings.namespace,
        "Datacenters": list(settings.datacenters),
        "Meta": meta,
        "Constraints": [],
        "TaskGroups": [
            {
                "Name": GROUP,
                "Count": 1,
                "RestartPolicy": {
                    "Attempts": 0,
                    "Mode": "fail",
                    "Interval": 24 * 3600 * _NS,
                    "Delay": 15 * _NS,
                },
                "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                # A lost allocation is not replaced (the reschedule policy does not cover it):
                # the disconnect block (Nomad >= 1.8) and its predecessor (>= 1.7.2).
                "Disconnect": {"Replace": False},
                "PreventRescheduleOnLost": True,
                "EphemeralDisk": {"SizeMB": routine.storage * 1024},
                "Tasks": [task],
            }
        ],
    }
    if settings.region:
        job["Region"] = settings.region
    if settings.pin_to_vm:
        job["Constraints"].append(
            {"LTarget": "${attr.unique.hostname}", "RTarget": attempt.vm_name, "Operand": "="}
        )
    return job


def _events(alloc: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for state in (alloc.get("TaskStates") or {}).values():
        found.extend(state.get("Events") or [])
    return sorted(found, key=lambda e: int(e.get("Time") or 0))


def _exit_code(event: Mapping[str, Any]) -> int | None:
    raw = (event.get("Details") or {}).get("exit_code", event.get("ExitCode"))
    try:
        return None if raw is None else int(raw)
    except (TypeError, ValueError):
        return None


def classify_allocation(alloc: Mapping[str, Any]) -> tuple[RunState, str, int | None]:
    """State, message and exit code of a run from its allocation (CONTRACT.md §7).

    ``SUBMITTED`` while not started; ``unknown`` (node disconnected) stays ``STARTED``.
    """
    client = alloc.get("ClientStatus", "")
    desired = alloc.get("DesiredStatus", "run")
    node = alloc.get("NodeName") or alloc.get("NodeID") or "?"
    events = _events(alloc)
    terminated = [e for e in events if e.get("Type") == "Terminated"]
    last = terminated[-1] if terminated else None
    exit_code = _exit_code(last) if last else None
    oom = any((e.get("Details") or {}).get("oom_killed") == "true" for e in terminated)
    failure = next((e for e in events if e.get("Type") in FAILURE_TYPES), None)
    if client == "lost":
        return RunState.EXTERNAL_ERROR, f"lost: node {node} went down", exit_code
    if client == "unknown":
        return RunState.STARTED, f"node {node} disconnected (unknown), waiting", exit_code
    if client == "running" or (
        client == "pending" and any(e.get("Type") == "Started" for e in events)
    ):
        return RunState.STARTED, f"running on {node}", None
    if client == "pending":
        return RunState.SUBMITTED, f"placed on {node}, starting", None
    if oom:
        return (
            RunState.EXTERNAL_ERROR,
            "resource: out of memory, killed by the kernel at its MemoryMB limit",
            exit_code if exit_code is not None else 137,
        )
    if client == "complete":
        if desired in ("stop", "evict"):
            return RunState.EXTERNAL_ERROR, f"cancelled: desired status {desired}", exit_code
        if last is not None and exit_code == 0:
            return RunState.PROCESSED, "exit code 0", 0
        if last is not None and exit_code is not None:
            return RunState.INTERNAL_ERROR, f"exit code {exit_code}", exit_code
        return RunState.EXTERNAL_ERROR, "complete without an exit code", None
    if client == "failed":
        if last is not None and exit_code not in (None, 0):
            return RunState.INTERNAL_ERROR, f"exit code {exit_code}", exit_code
        if failure is not None:
            details = failure.get("Details") or {}
            why = next((details[k] for k in _FAILURE_DETAILS if details.get(k)), "")
            why = why or failure.get("DisplayMessage") or ""
            return RunState.EXTERNAL_ERROR, f"{failure['Type']}: {why}".rstrip(": "), None
        if desired in ("stop", "evict"):
            return RunState.EXTERNAL_ERROR, f"cancelled: desired status {desired}", exit_code
        description = alloc.get("ClientDescription") or "failed"
        return RunState.EXTERNAL_ERROR, f"failed: {description}", exit_code
    return RunState.SUBMITTED, f"client status {client!r}", None


@dataclass(slots=True)
class _Run:
    key: str
    eval_id: str = ""
    emitted: RunState | None = None
    final: Outcome | None = None
    stopped_lost: bool = False  # its job was stopped after an allocation was lost


class NomadExecutor:
    """The :class:`hrwsi.executors.base.Executor` on Nomad (see the module docstring)."""

    def __init__(
        self,
        settings: NomadExecutorConfig,
        *,
        client: nomad_client.NomadClient | None = None,
        http: httpx.AsyncClient | None = None,
        owns_client: bool | None = None,
    ) -> None:
        """``client`` (made from ``settings`` when omitted) is closed by :meth:`aclose` if
        ``owns_client`` (default: only a client made here)."""
        self._settings = settings
        self._owns_client = client is None if owns_client is None else owns_client
        self._client = client or nomad_client.NomadClient.from_config(settings, http)
        self._runs: dict[str, _Run] = {}
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._background: list[asyncio.Task[None]] = []
        self._event_index = 0
        self._closed = False
        self._refreshing: set[str] = set()
        self._dirty: set[str] = set()
        self._refresh_tasks: set[asyncio.Task[None]] = set()
        self._refresh_limit = asyncio.Semaphore(16)

    @classmethod
    def from_config(cls, config: Config, http: httpx.AsyncClient | None = None) -> NomadExecutor:
        return cls(config.executor.nomad, http=http)

    # -- identity -------------------------------------------------------------------------

    def job_id(self, key: str) -> str:
        return job_id_of(self._settings, key)

    def _key_of(self, job_id: str) -> str | None:
        prefix = self._settings.job_prefix + "-"
        return job_id[len(prefix) :] if job_id.startswith(prefix) else None

    async def check_variables(self) -> None:
        """Fail now, with a clear message, if the cluster has no Nomad variables (Nomad < 1.4).

        The runs' secrets template reads a Nomad variable, so without that API every run
        would fail at its start; a missing variable (404 ``variable not found``) is fine.
        """
        path = self._settings.secrets_variable_path
        try:
            await self._client.get_variable(path)
        except nomad_client.JobNotFound as exc:
            if "variable not found" in str(exc):
                return
            raise errors.ExecutorRejected(
                "executor.nomad.passthrough_env needs Nomad variables (Nomad >= 1.4), and the "
                f"cluster at {self._settings.address} has no variables API (GET /v1/var/{path} "
                f"answered {exc}); upgrade Nomad or leave passthrough_env empty",
                status_code=exc.status_code,
                url=exc.url,
            ) from exc

    async def publish_secrets(self, env: Mapping[str, str]) -> list[str]:
        """Copy the ``passthrough_env`` values found in ``env`` into the Nomad variable the
        runs' template reads; return the names copied. Needs Nomad variables (Nomad >= 1.4):
        checked first (:meth:`check_variables`), so a cluster without them fails here, at
        start, rather than at the first run.

        ``env`` is handed in by the composition root (the executor reads no environment).
        Publishing is optional (values may be put there by an operator instead); other items
        of the variable are kept. Values go only into that one request body, never into a log.
        """
        await self.check_variables()
        names = self._settings.passthrough_env
        items = {name: env[name] for name in names if name in env}
        missing = [name for name in names if name not in env]
        if missing:
            log.warning("nomad.secrets_missing", extra={"names": missing})
        if not items:
            return []
        path = self._settings.secrets_variable_path
        try:
            current = (await self._client.get_variable(path)).value.get("Items") or {}
        except nomad_client.JobNotFound:
            current = {}
        await self._client.put_variable(path, {**current, **items})
        log.info("nomad.secrets_published", extra={"names": sorted(items), "path": path})
        return sorted(items)

    # -- Executor protocol ----------------------------------------------------------------

    async def submit(self, attempt: Attempt) -> str:
        """Register the attempt's job unless it exists; return the Nomad job id."""
        job_id = self.job_id(attempt.key)
        if not attempt.routine.docker_image:
            raise errors.ExecutorRejected(
                f"routine {attempt.routine.name} has no docker_image to run on Nomad"
            )
        spec = job_spec(attempt, self._settings)
        eval_id = ""
        try:
            result = await self._client.register_job(spec, enforce_index=True)
            eval_id = str(result.get("EvalID") or "")
            log.info("nomad.submitted", extra={"key": attempt.key, "job_id": job_id})
        except errors.ExecutorRejected as exc:
            if "job already exists" not in str(exc):
                raise
            log.info("nomad.already_submitted", extra={"key": attempt.key, "job_id": job_id})
        run = self._runs.setdefault(attempt.key, _Run(attempt.key))
        run.eval_id = run.eval_id or eval_id
        self._start_background()
        return job_id

    async def outcomes(self) -> AsyncIterator[Outcome]:
        """Changes of state of the followed runs (STARTED, then one terminal), until closed."""
        self._start_background()
        while True:
            outcome = await self._queue.get()
            if outcome is None:
                self._queue.put_nowait(None)  # every later reader ends too
                return
            yield outcome

    async def status(self, key: str) -> Outcome:
        """Read the run back from Nomad (and follow it from now on if it exists)."""
        run = self._runs.get(key)
        if run is not None and run.final is not None:
            return run.final
        outcome = await self._observe(key)
        if outcome.state is not RunState.UNKNOWN:
            self._runs.setdefault(key, _Run(key))
            self._start_background()
        self._record(outcome)
        return outcome

    async def cancel(self, key: str) -> None:
        """Stop the job (not purged: the stop shows up as an external error, cancelled)."""
        await self._client.delete_job(self.job_id(key))
        log.info("nomad.cancelled", extra={"key": key})

    async def forget(self, key: str) -> None:
        """Purge the job; call only once its outcome is recorded."""
        await self._client.delete_job(self.job_id(key), purge=True)
        self._runs.pop(key, None)
        log.info("nomad.purged", extra={"key": key})

    async def aclose(self) -> None:
        """Stop following; runs go on in Nomad and are found again through ``status``."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._background, *self._refresh_tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queue.put_nowait(None)
        if self._owns_client:
            await self._client.aclose()

    # -- reading a run ----------------------------------------------------------------------

    async def _observe(self, key: str) -> Outcome:
        job_id = self.job_id(key)
        try:
            job = (await self._client.get_job(job_id)).value
            allocs = (await self._client.get_job_allocations(job_id)).value
        except nomad_client.JobNotFound:
            if key in self._runs:
                return Outcome(key, RunState.EXTERNAL_ERROR, LOST_TRACK, run_id=job_id)
            return Outcome(key, RunState.UNKNOWN, "no such Nomad job", run_id=job_id)
        try:
            lost = sorted(
                (a for a in allocs if a.get("ClientStatus") == "lost"),
                key=lambda a: int(a.get("CreateIndex") or 0),
            )
            if lost:
                # The attempt is lost even if Nomad placed a replacement: stop the job first.
                state, message, exit_code = classify_allocation(lost[0])
                await self._stop_lost(key, job)
                return Outcome(key, state, message, exit_code, run_id=job_id)
            if allocs:
                latest = max(allocs, key=lambda a: int(a.get("CreateIndex") or 0))
                state, message, exit_code = classify_allocation(latest)
                return Outcome(key, state, message, exit_code, run_id=job_id)
            if job.get("Stop"):
                message = "cancelled: stopped before it was placed"
                return Outcome(key, RunState.EXTERNAL_ERROR, message, run_id=job_id)
            if job.get("Status") == "dead":
                message = "lost track: the job is dead without any allocation"
                return Outcome(key, RunState.EXTERNAL_ERROR, message, run_id=job_id)
            return await self._check_placement(key, job)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A reply not shaped like Nomad's (a proxy, a version change): this read failed,
            # the run is still followed and read again on the next sweep.
            raise errors.ExecutorTransient(
                f"Nomad sent a job or allocation that cannot be read: {exc!r}", url=job_id
            ) from exc

    async def _stop_lost(self, key: str, job: Mapping[str, Any]) -> None:
        """Stop (not purge) the job of a run with a lost allocation, before it is reported, so
        no replacement runs it again; a failed stop raises and the run is read again later."""
        run = self._runs.get(key)
        if (run is not None and run.stopped_lost) or job.get("Stop"):
            return
        await self._client.delete_job(self.job_id(key))
        if run is not None:
            run.stopped_lost = True
        log.warning("nomad.lost_stopped", extra={"key": key, "job_id": self.job_id(key)})

    async def _check_placement(self, key: str, job: Mapping[str, Any]) -> Outcome:
        job_id = self.job_id(key)
        waited_s = (time.time_ns() - int(job.get("SubmitTime") or time.time_ns())) / _NS
        if waited_s <= self._settings.placement_timeout_s:
            return Outcome(key, RunState.SUBMITTED, "waiting for placement", run_id=job_id)
        summary = (await self._client.get_job_summary(job_id)).value
        queued = sum(int(g.get("Queued") or 0) for g in (summary.get("Summary") or {}).values())
        why = await self._placement_failure(key)
        if not queued and not why:
            return Outcome(key, RunState.SUBMITTED, "waiting for placement", run_id=job_id)
        await self._client.delete_job(job_id)
        message = f"placement: not placed after {waited_s:.0f} s" + (f" ({why})" if why else "")
        log.warning("nomad.placement_timeout", extra={"key": key, "job_id": job_id})
        return Outcome(key, RunState.EXTERNAL_ERROR, message, run_id=job_id)

    async def _placement_failure(self, key: str) -> str:
        run = self._runs.get(key)
        if run is None or not run.eval_id:
            return ""
        try:
            evaluation = (await self._client.get_evaluation(run.eval_id)).value
        except nomad_client.JobNotFound:
            return ""
        failed = evaluation.get("FailedTGAllocs") or {}
        reasons: list[str] = []
        for metrics in failed.values():
            reasons.extend((metrics.get("ConstraintFiltered") or {}).keys())
        return "; ".join(sorted(set(reasons))) or ("blocked" if failed else "")

    def _record(self, outcome: Outcome) -> None:
        run = self._runs.get(outcome.key)
        if run is None or run.final is not None:
            return
        if outcome.state.is_terminal:
            run.final = outcome
        if outcome.state in (RunState.SUBMITTED, RunState.UNKNOWN) or outcome.state is run.emitted:
            return
        run.emitted = outcome.state
        log.info(
            "nomad.outcome",
            extra={"key": outcome.key, "state": outcome.state.value, "detail": outcome.message},
        )
        self._queue.put_nowait(outcome)

    # -- following --------------------------------------------------------------------------

    def _start_background(self) -> None:
        if self._background or self._closed:
            return
        self._background = [
            asyncio.create_task(self._follow_events(), name="nomad-events"),
            asyncio.create_task(self._sweep_forever(), name="nomad-sweep"),
        ]

    def _open_keys(self) -> list[str]:
        return [key for key, run in self._runs.items() if run.final is None]

    async def _sweep(self, listing: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Read back the followed runs that may have moved (all of them without a listing).

        With a job listing (``GET /v1/jobs?prefix=``), a run is read only when its job is
        missing (purged, GC'd), dead, running but not yet reported started, or pending past
        the placement timeout.
        """
        keys = self._open_keys()
        if listing is not None:
            listed = {str(stub.get("ID")): stub for stub in listing}
            keys = [key for key in keys if self._may_have_moved(key, listed.get(self.job_id(key)))]
        limit = asyncio.Semaphore(8)

        async def one(key: str) -> None:
            async with limit:
                try:
                    self._record(await self._observe(key))
                except errors.ExecutorError as exc:
                    log.warning("nomad.sweep_failed", extra={"key": key, "error": str(exc)})

        await asyncio.gather(*(one(key) for key in keys))

    def _may_have_moved(self, key: str, stub: Mapping[str, Any] | None) -> bool:
        """Whether a listed job may hold news the stream did not bring (a cheap test)."""
        if stub is None or stub.get("Status") == "dead":
            return True  # purged or GC'd (404 path), or ended
        summary = (stub.get("JobSummary") or {}).get("Summary") or {}
        if any(int(group.get("Lost") or 0) for group in summary.values()):
            return True  # a lost allocation, maybe already replaced: stop the job and report
        if stub.get("Status") == "running":
            return self._runs[key].emitted is None  # started, unless already reported
        waited_s = (time.time_ns() - int(stub.get("SubmitTime") or 0)) / _NS
        return waited_s > self._settings.placement_timeout_s  # pending: placement timeout

    async def _reconnected(self) -> None:
        """After every (re)connection of the stream: catch up with what it missed."""
        try:
            listing = await self._client.list_jobs(prefix=self._settings.job_prefix + "-")
        except errors.ExecutorError as exc:
            log.warning("nomad.sweep_failed", extra={"error": str(exc)})
            return
        await self._sweep(listing.value)

    async def _sweep_forever(self) -> None:
        """The reconcile path: a blocking query on our jobs, then a sweep of what moved.

        The query returns when one of our jobs changes or after ``sweep_interval_s``, so
        placement timeouts are checked at least that often.
        """
        index: int | None = None
        prefix = self._settings.job_prefix + "-"
        while True:
            started = time.monotonic()
            try:
                listing = await self._client.list_jobs(
                    prefix=prefix, index=index, wait_s=self._settings.sweep_interval_s
                )
            except errors.ExecutorError as exc:
                log.warning("nomad.sweep_failed", extra={"error": str(exc)})
                index = None
                await asyncio.sleep(self._settings.sweep_interval_s)
                continue
            index = listing.index if listing.index > 0 else None
            try:
                await self._sweep(listing.value)
            except Exception as exc:
                # A listing not shaped like Nomad's must not end the reconcile path for good
                # (nothing awaits this task until aclose): log, and sweep again next time.
                log.error("nomad.sweep_crashed", extra={"error": repr(exc)})
                index = None
            # At most about four passes per interval however busy the cluster is.
            pause = self._settings.sweep_interval_s / 4 - (time.monotonic() - started)
            await asyncio.sleep(max(pause, 0.0))

    async def _follow_events(self) -> None:
        while True:
            try:
                async for frame in self._client.events(
                    ["Job", "Allocation"], index=self._event_index, on_connect=self._reconnected
                ):
                    self._event_index = max(self._event_index, int(frame.get("Index") or 0))
                    await self._on_frame(frame)
            except Exception as exc:
                # A refused stream (403) or a bug: the sweep still follows the runs.
                log.error("nomad.events_failed", extra={"error": repr(exc)})
                await asyncio.sleep(self._settings.sweep_interval_s)

    async def _on_frame(self, frame: Mapping[str, Any]) -> None:
        for event in frame.get("Events") or []:
            payload = event.get("Payload") or {}
            if event.get("Topic") == "Allocation":
                alloc = payload.get("Allocation") or {}
                job_id = str(alloc.get("JobID") or (event.get("FilterKeys") or [""])[0])
            elif event.get("Type") == "JobDeregistered":  # stopped or purged
                alloc = {}
                job_id = str(event.get("Key") or "")
            else:
                continue
            key = self._key_of(job_id)
            run = self._runs.get(key) if key is not None else None
            if key is None or run is None or run.final is not None:
                continue
            if alloc.get("ClientStatus") in ("pending", "running", "unknown"):
                # Cheap states come from the payload; an end is read back in full, since
                # event payloads may carry trimmed task states.
                state, message, exit_code = classify_allocation(alloc)
                self._record(Outcome(key, state, message, exit_code, run_id=job_id))
            else:
                self._refresh_soon(key)

    def _refresh_soon(self, key: str) -> None:
        """Read the run back in a task of its own, so the stream is not held up meanwhile."""
        if key in self._refreshing:
            self._dirty.add(key)  # read it once more when the current read is done
            return
        self._refreshing.add(key)
        task = asyncio.create_task(self._refresh(key))
        self._refresh_tasks.add(task)
        task.add_done_callback(self._refresh_tasks.discard)

    async def _refresh(self, key: str) -> None:
        try:
            while True:
                self._dirty.discard(key)
                async with self._refresh_limit:
                    try:
                        self._record(await self._observe(key))
                    except errors.ExecutorError as exc:
                        log.warning("nomad.refresh_failed", extra={"key": key, "error": str(exc)})
                if key not in self._dirty:
                    return
        finally:
            self._refreshing.discard(key)
