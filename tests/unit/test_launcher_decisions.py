"""The launcher's decisions without a database: the outcome state machine, and the service
on the fake store and the fake executor."""

from __future__ import annotations

from datetime import datetime

from hrwsi.config import Config, RetryConfig
from hrwsi.db.stores.launcher import FakeLauncherStore
from hrwsi.domain import outcomes
from hrwsi.domain.statuses import ProcessingStatus
from hrwsi.executors.base import Outcome, RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService

STARTED, PROCESSED = ProcessingStatus.STARTED, ProcessingStatus.PROCESSED
INTERNAL, EXTERNAL = ProcessingStatus.INTERNAL_ERROR, ProcessingStatus.EXTERNAL_ERROR


def locked(key: str = "task-1-attempt-1", **kw: object) -> outcomes.LockedDispatch:
    base: dict[str, object] = dict(
        dispatch_id=10,
        key=key,
        log_path=None,
        task_id=1,
        input_id=100,
        processing_condition="MAJA_PC",
        tile="31TCH",
        sensing_start=datetime(2026, 3, 4),
        extra_attempts=0,
        has_successor=True,
        has_started=False,
        has_terminal=False,
    )
    base.update(kw)
    return outcomes.LockedDispatch(**base)  # type: ignore[arg-type]


def test_started_then_processed_records_both_once_and_ends_the_task() -> None:
    """started + processed + a repeat of both: two status rows, one processed task."""
    d = locked()
    obs = [outcomes.Observation(d.key, s) for s in (STARTED, PROCESSED, STARTED, PROCESSED)]
    ch = outcomes.changes({d.key: d}, obs)
    assert [s.status for s in ch.statuses] == [STARTED, PROCESSED]
    assert ch.processed == (d,)
    assert ch.failed == ()
    assert ch.forget == (d.key, d.key)
    assert ch.successors_of() == [100]


def test_started_after_a_terminal_status_is_ignored() -> None:
    """A late 'started' (the run already ended) writes nothing."""
    d = locked(has_terminal=True)
    ch = outcomes.changes({d.key: d}, [outcomes.Observation(d.key, STARTED)])
    assert ch.statuses == ()
    assert ch.started == ()


def test_a_terminal_status_already_recorded_is_only_forgotten() -> None:
    """A repeat of a recorded end: no row, no decision, but the executor forgets the run."""
    d = locked(has_started=True, has_terminal=True)
    ch = outcomes.changes({d.key: d}, [outcomes.Observation(d.key, INTERNAL)])
    assert (ch.statuses, ch.failed, ch.forget) == ((), (), (d.key,))


def test_an_error_goes_to_the_policy_and_a_new_log_path_is_kept() -> None:
    """An error ends nothing by itself: it is a failure for the retry policy."""
    d = locked(has_successor=False, log_path="/old")
    obs = outcomes.Observation(d.key, EXTERNAL, "lost", log_path="/new")
    ch = outcomes.changes({d.key: d}, [obs])
    assert ch.failed == ((d, obs),)
    assert ch.log_paths == {10: "/new"}
    assert ch.successors_of() == []


def test_an_unknown_key_is_reported() -> None:
    """An observation of no locked dispatch changes nothing."""
    ch = outcomes.changes({}, [outcomes.Observation("task-9-attempt-1", PROCESSED)])
    assert ch.unknown == ("task-9-attempt-1",)
    assert ch.statuses == ()


async def _emit(executor: FakeExecutor, key: str, state: RunState, message: str) -> Outcome:
    executor.emit(key, state, message)
    return await executor.status(key)


def _config(internal_retries: int = 0) -> Config:
    return Config(
        retry=RetryConfig(
            max_attempts_per_task=3,
            external_error_retries=3,
            internal_error_retries=internal_retries,
            backoff_initial_s=0,
            backoff_max_s=0,
        )
    )


async def test_the_launcher_runs_a_chain_in_order_on_fakes() -> None:
    """reconcile dispatches the head; its outcome dispatches the successor at once."""
    store = FakeLauncherStore()
    a = store.add_task(1)
    b = store.add_task(2, preceding_input_id=1)
    executor = FakeExecutor(auto=False)
    service = LauncherService(_config(), "unused", executor, store=store)
    await service.reconcile()
    assert [k for op, k in executor.calls if op == "submit"] == [f"task-{a}-attempt-1"]
    assert await service.record_outcomes(
        [await _emit(executor, f"task-{a}-attempt-1", RunState.PROCESSED, "exit 0")]
    )
    assert [k for op, k in executor.calls if op == "submit"] == [
        f"task-{a}-attempt-1",
        f"task-{b}-attempt-1",
    ]
    assert store.tasks[a].has_ended
    assert [p.input_id for p in store.products.values()] == [1]
    await service.aclose()


async def test_an_internal_error_without_retries_ends_the_task_on_fakes() -> None:
    """internal_error_retries = 0: the first internal error is final."""
    store = FakeLauncherStore()
    a = store.add_task(1)
    executor = FakeExecutor(auto=False)
    service = LauncherService(_config(0), "unused", executor, store=store)
    await service.reconcile()
    key = f"task-{a}-attempt-1"
    assert await service.record_outcomes([await _emit(executor, key, RunState.INTERNAL_ERROR, "x")])
    assert store.tasks[a].has_ended
    assert store.statuses(a) == [(key, INTERNAL)]
    assert store.products == {}
    await service.aclose()


async def test_an_external_error_is_retried_with_a_new_attempt_on_fakes() -> None:
    """An external error within the retries: a second attempt is claimed and submitted."""
    store = FakeLauncherStore()
    a = store.add_task(1)
    executor = FakeExecutor(auto=False)
    service = LauncherService(_config(), "unused", executor, store=store)
    await service.reconcile()
    assert await service.record_outcomes(
        [await _emit(executor, f"task-{a}-attempt-1", RunState.EXTERNAL_ERROR, "lost")]
    )
    assert not store.tasks[a].has_ended
    await service.reconcile()
    assert f"task-{a}-attempt-2" in [k for op, k in executor.calls if op == "submit"]
    await service.aclose()


async def test_a_condition_without_routine_is_an_external_error_on_fakes() -> None:
    """A claimed task whose condition has no routine is never submitted."""
    store = FakeLauncherStore()
    a = store.add_task(1, condition="NOPE")
    executor = FakeExecutor(auto=False)
    service = LauncherService(_config(), "unused", executor, store=store)
    await service.reconcile()
    assert [op for op, _ in executor.calls if op == "submit"] == []
    assert store.statuses(a) == [(f"task-{a}-attempt-1", EXTERNAL)]
    await service.aclose()
