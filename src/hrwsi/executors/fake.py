"""An in-memory executor for tests: a log of calls and scriptable outcomes.

Every call is appended to ``calls`` as ``(method, key)``; ``runs_started`` counts the runs
really started (a repeated ``submit`` of a known key is not one). What a run does is
scripted per key (``script("task-3-attempt-1", RunState.INTERNAL_ERROR)``) or by a default
(``default``: started, then processed). With ``auto=True`` (the default) a submitted run
plays its script at once on the outcome stream; with ``auto=False`` the test drives it with
``advance(key)`` or ``emit(...)``. ``emit`` can also repeat an observation, as real event
streams do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from hrwsi.domain import errors
from hrwsi.executors.base import Attempt, Outcome, RunState


class FakeExecutor:
    def __init__(
        self,
        *,
        auto: bool = True,
        default: Sequence[RunState | tuple[RunState, str]] = (
            RunState.STARTED,
            RunState.PROCESSED,
        ),
    ) -> None:
        self.auto = auto
        self.default = tuple(s if isinstance(s, tuple) else (s, "") for s in default)
        self.calls: list[tuple[str, str]] = []
        self.attempts: dict[str, Attempt] = {}
        self.runs_started = 0
        self._scripts: dict[str, tuple[tuple[RunState, str], ...]] = {}
        self._states: dict[str, Outcome] = {}
        self._pending: dict[str, list[tuple[RunState, str]]] = {}
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self.closed = False

    def script(self, key: str, *steps: RunState | tuple[RunState, str]) -> None:
        """What the run with ``key`` will do (states in order, optionally with a message)."""
        self._scripts[key] = tuple(s if isinstance(s, tuple) else (s, "") for s in steps)

    def set_state(self, key: str, state: RunState, message: str = "") -> None:
        """Pretend the platform holds a run in ``state`` (e.g. one a crashed launcher made)."""
        self._states[key] = Outcome(key=key, state=state, message=message, run_id=key)

    def emit(
        self, key: str, state: RunState, message: str = "", exit_code: int | None = None
    ) -> None:
        """Put an observation on the stream and make it the run's current state."""
        outcome = Outcome(
            key=key,
            state=state,
            message=message,
            exit_code=exit_code,
            run_id=key,
            log_path=f"fake://{key}.log",
        )
        self._states[key] = outcome
        self._queue.put_nowait(outcome)

    def advance(self, key: str) -> RunState | None:
        """Play the next scripted step of a run; None when its script is done."""
        steps = self._pending.get(key)
        if not steps:
            return None
        state, message = steps.pop(0)
        if state is RunState.PROCESSED:
            self.emit(key, state, message or "exit code 0", 0)
        elif state is RunState.INTERNAL_ERROR:
            self.emit(key, state, message or "exit code 1", 1)
        else:
            self.emit(key, state, message)
        return state

    @property
    def backlog(self) -> int:
        """Observations emitted and not yet read from ``outcomes()``."""
        return self._queue.qsize()

    async def submit(self, attempt: Attempt) -> str:
        key = attempt.key
        self.calls.append(("submit", key))
        if self.closed:
            raise errors.ExecutorTransient("the fake executor is closed")
        if key in self._states:
            return key
        self.runs_started += 1
        self.attempts[key] = attempt
        self._states[key] = Outcome(key=key, state=RunState.SUBMITTED, run_id=key)
        steps = self._scripts.get(key, self.default)
        self._pending[key] = list(steps)
        if self.auto:
            while self.advance(key) is not None:
                pass
        return key

    async def outcomes(self) -> AsyncIterator[Outcome]:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)
                return
            yield item

    async def status(self, key: str) -> Outcome:
        self.calls.append(("status", key))
        return self._states.get(key, Outcome(key=key, state=RunState.UNKNOWN, run_id=key))

    async def cancel(self, key: str) -> None:
        self.calls.append(("cancel", key))
        current = self._states.get(key)
        if current is not None and not current.state.is_terminal:
            self._pending.pop(key, None)
            self.emit(key, RunState.EXTERNAL_ERROR, "cancelled")

    async def forget(self, key: str) -> None:
        self.calls.append(("forget", key))
        current = self._states.get(key)
        if current is not None and current.state.is_terminal:
            del self._states[key]
            self._pending.pop(key, None)

    async def aclose(self) -> None:
        self.calls.append(("aclose", ""))
        self.closed = True
        self._queue.put_nowait(None)
