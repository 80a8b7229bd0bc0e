"""The launcher's pure rules: when a failed task is tried again, and where its product goes.

Retry policy (``config.retry``), applied each time an attempt of a task ends in error:

* a task gets at most ``max_attempts_per_task + extra_attempts`` attempts (dispatches), where
  ``extra_attempts`` is ``processing_tasks.extra_attempts``, raised by ``hrwsi retry``;
* external errors (the platform failed) are retried ``external_error_retries + extra_attempts``
  times, internal errors (the routine exited non-zero) ``internal_error_retries +
  extra_attempts`` times; each kind is counted over the whole history of the task;
* the n-th error of a task waits ``min(backoff_max_s, backoff_initial_s * 2**(n-1))`` seconds,
  shortened by up to half at random (jitter spreads retries of tasks that failed together),
  counted from the end of the failed attempt;
* when any limit is reached the task has ended for good (``has_ended = true``).

Product path template (documented for operators, stable)::

    /HRWSI/<product data type>/<processing condition>/<tile>/<YYYY>/<MM>/<DD>/<product name>
    product name = <product type code>_<tile>_<YYYYMMDDTHHMMSS>_<input id>

with the date and time of the input's sensing start (UTC). The name depends only on the input
and the routine, so a repeated success maps to the same path (``products.product_path`` is
unique: one product row per input and routine).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hrwsi.domain.statuses import ProcessingStatus


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The limits of ``config.retry`` as plain values."""

    max_attempts_per_task: int = 4
    external_error_retries: int = 3
    internal_error_retries: int = 1
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts_per_task < 1:
            raise ValueError("max_attempts_per_task must be at least 1")
        if min(self.external_error_retries, self.internal_error_retries) < 0:
            raise ValueError("error retries cannot be negative")
        if self.backoff_initial_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff durations cannot be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def backoff_s(self, error_number: int, rand: float = 0.0) -> float:
        """Seconds to wait after the ``error_number``-th error (1-based) of a task.

        ``rand`` in [0, 1) is the caller's random draw: the delay is shortened by
        ``jitter * rand`` of itself, so it stays within [delay * (1 - jitter), delay].
        """
        if error_number < 1:
            raise ValueError("error_number is 1-based")
        exponent = min(error_number - 1, 62)  # 2**62 s is already far past any backoff_max_s
        delay = min(self.backoff_max_s, self.backoff_initial_s * float(2**exponent))
        return delay * (1.0 - self.jitter * min(max(rand, 0.0), 1.0))


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One past attempt of a task: its terminal status (None while it runs) and end time."""

    status: ProcessingStatus | None
    ended_at: datetime | None = None


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"  # the last attempt processed: nothing more to do
    RUNNING = "running"  # the last attempt has no terminal status yet
    RETRY_NOW = "retry_now"
    RETRY_AT = "retry_at"
    ENDED = "ended"  # failed for good: has_ended = true


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    at: datetime | None = None
    reason: str = ""

    @property
    def has_ended(self) -> bool:
        """Whether ``processing_tasks.has_ended`` becomes true."""
        return self.verdict in (Verdict.SUCCEEDED, Verdict.ENDED)


def decide(
    policy: RetryPolicy,
    history: Sequence[AttemptRecord],
    *,
    extra_attempts: int = 0,
    now: datetime,
    rand: float = 0.0,
) -> Decision:
    """What happens next to a task whose attempts so far are ``history`` (oldest first)."""
    if not history:
        return Decision(Verdict.RETRY_NOW, now, "no attempt yet")
    last = history[-1]
    if last.status is None or last.status is ProcessingStatus.STARTED:
        return Decision(Verdict.RUNNING, reason="the last attempt has not ended")
    if last.status is ProcessingStatus.PROCESSED:
        return Decision(Verdict.SUCCEEDED, reason="processed")
    extra = max(extra_attempts, 0)
    attempts = len(history)
    cap = policy.max_attempts_per_task + extra
    if attempts >= cap:
        return Decision(Verdict.ENDED, reason=f"attempt cap reached ({attempts} of {cap})")
    errors = [r.status for r in history if r.status is not None and r.status.is_error]
    same_kind = sum(1 for s in errors if s is last.status)
    if last.status is ProcessingStatus.INTERNAL_ERROR:
        allowed, kind = policy.internal_error_retries + extra, "internal"
    else:
        allowed, kind = policy.external_error_retries + extra, "external"
    if same_kind > allowed:
        return Decision(
            Verdict.ENDED,
            reason=f"{kind} error retries exhausted ({same_kind - 1} of {allowed} used)",
        )
    delay = policy.backoff_s(len(errors), rand)
    start = last.ended_at if last.ended_at is not None else now
    at = start + timedelta(seconds=delay)
    if at <= now:
        return Decision(Verdict.RETRY_NOW, now, f"retry {kind} error now")
    return Decision(Verdict.RETRY_AT, at, f"retry {kind} error after {delay:.1f}s backoff")


@dataclass(frozen=True, slots=True)
class ProductInput:
    """What the product path of a task's product depends on."""

    input_id: int
    processing_condition: str
    tile: str
    sensing_start: datetime
    product_data_type: str
    product_type_code: str


def product_name(source: ProductInput) -> str:
    """``<product type code>_<tile>_<YYYYMMDDTHHMMSS>_<input id>``, deterministic."""
    stamp = source.sensing_start.strftime("%Y%m%dT%H%M%S")
    return f"{source.product_type_code}_{_segment(source.tile)}_{stamp}_{source.input_id}"


def product_path(source: ProductInput) -> str:
    """The logical product path (see the module docstring for the template)."""
    day = source.sensing_start
    parts = (
        "HRWSI",
        _segment(source.product_data_type),
        _segment(source.processing_condition),
        _segment(source.tile),
        f"{day.year:04d}",
        f"{day.month:02d}",
        f"{day.day:02d}",
        product_name(source),
    )
    return "/" + "/".join(parts)


def _segment(text: str) -> str:
    """A path segment that cannot escape its folder (no '/', no '..', never empty)."""
    cleaned = text.replace("/", "_").replace("\\", "_").strip()
    if cleaned in ("", ".", ".."):
        return "_"
    return cleaned
