"""The pure retry policy and product path template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain.retry import (
    AttemptRecord,
    ProductInput,
    RetryPolicy,
    Verdict,
    decide,
    product_name,
    product_path,
)
from hrwsi.domain.statuses import ProcessingStatus as S

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts_per_task=4,
    external_error_retries=3,
    internal_error_retries=1,
    backoff_initial_s=10,
    backoff_max_s=60,
    jitter=0.0,
)


def rec(status: S | None, ago_s: float = 0) -> AttemptRecord:
    return AttemptRecord(status, NOW - timedelta(seconds=ago_s))


def test_success_ends_the_task():
    """A processed last attempt ends the task (has_ended) with nothing to retry."""
    d = decide(POLICY, [rec(S.EXTERNAL_ERROR, 100), rec(S.PROCESSED)], now=NOW)
    assert d.verdict is Verdict.SUCCEEDED and d.has_ended


def test_running_attempt_is_not_judged():
    """An attempt without a terminal status is still running: no decision is made."""
    assert decide(POLICY, [rec(None)], now=NOW).verdict is Verdict.RUNNING
    assert decide(POLICY, [rec(S.STARTED)], now=NOW).verdict is Verdict.RUNNING


def test_first_external_error_waits_the_initial_backoff():
    """The first error waits backoff_initial_s from the end of the failed attempt."""
    d = decide(POLICY, [rec(S.EXTERNAL_ERROR, 3)], now=NOW)
    assert d.verdict is Verdict.RETRY_AT and d.at == NOW + timedelta(seconds=7)
    assert not d.has_ended


def test_backoff_elapsed_means_retry_now():
    """When the backoff has already elapsed the retry is due now."""
    d = decide(POLICY, [rec(S.EXTERNAL_ERROR, 30)], now=NOW)
    assert d.verdict is Verdict.RETRY_NOW and d.at == NOW


def test_backoff_doubles_and_is_capped():
    """The n-th error waits initial x 2^(n-1), never more than backoff_max_s."""
    assert [POLICY.backoff_s(n) for n in (1, 2, 3, 4, 5, 100)] == [10, 20, 40, 60, 60, 60]


@given(st.integers(1, 200), st.floats(0, 0.999999))
def test_jitter_stays_within_bounds(n: int, rand: float):
    """Jitter shortens a delay by at most the jitter fraction, never lengthens it."""
    policy = RetryPolicy(backoff_initial_s=5, backoff_max_s=600, jitter=0.5)
    full = policy.backoff_s(n, 0.0)
    assert full * 0.5 <= policy.backoff_s(n, rand) <= full


def test_internal_errors_are_retried_fewer_times():
    """With internal_error_retries=1 the second internal error ends the task."""
    first = decide(POLICY, [rec(S.INTERNAL_ERROR, 100)], now=NOW)
    assert first.verdict is Verdict.RETRY_NOW
    second = decide(POLICY, [rec(S.INTERNAL_ERROR, 100), rec(S.INTERNAL_ERROR)], now=NOW)
    assert second.verdict is Verdict.ENDED and "internal" in second.reason


def test_external_errors_are_capped_by_max_attempts():
    """External errors keep being retried until the per-task attempt cap."""
    history = [rec(S.EXTERNAL_ERROR, 1000)] * 3
    assert decide(POLICY, history, now=NOW).verdict is Verdict.RETRY_NOW
    d = decide(POLICY, [*history, rec(S.EXTERNAL_ERROR)], now=NOW)
    assert d.verdict is Verdict.ENDED and "cap" in d.reason


def test_external_retries_limit_below_the_cap():
    """external_error_retries ends a task before the cap when it is smaller."""
    policy = RetryPolicy(max_attempts_per_task=10, external_error_retries=1, backoff_initial_s=0)
    assert decide(policy, [rec(S.EXTERNAL_ERROR)], now=NOW).verdict is Verdict.RETRY_NOW
    d = decide(policy, [rec(S.EXTERNAL_ERROR)] * 2, now=NOW)
    assert d.verdict is Verdict.ENDED and "external" in d.reason


def test_extra_attempts_grant_one_more_try():
    """An operator's extra attempt (hrwsi retry) reopens a task that hit every limit."""
    history = [rec(S.INTERNAL_ERROR, 1000), rec(S.INTERNAL_ERROR, 1000)]
    assert decide(POLICY, history, now=NOW).verdict is Verdict.ENDED
    assert decide(POLICY, history, extra_attempts=1, now=NOW).verdict is Verdict.RETRY_NOW
    capped = [rec(S.EXTERNAL_ERROR, 1000)] * 4
    assert decide(POLICY, capped, extra_attempts=1, now=NOW).verdict is Verdict.RETRY_NOW
    assert (
        decide(POLICY, [*capped, rec(S.EXTERNAL_ERROR)], extra_attempts=1, now=NOW).verdict
        is Verdict.ENDED
    )


def test_mixed_errors_count_each_kind_separately():
    """An internal error after external ones still gets its own retry."""
    history = [
        rec(S.EXTERNAL_ERROR, 1000),
        rec(S.EXTERNAL_ERROR, 1000),
        rec(S.INTERNAL_ERROR, 1000),
    ]
    assert decide(POLICY, history, now=NOW).verdict is Verdict.RETRY_NOW


def test_invalid_policy_is_rejected():
    """A policy with no attempt at all or a jitter above 1 is refused."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts_per_task=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)


SOURCE = ProductInput(
    input_id=42,
    processing_condition="MAJA_PC",
    tile="31TCH",
    sensing_start=datetime(2026, 3, 4, 10, 20, 31),
    product_data_type="L2A",
    product_type_code="S2_MAJA_L2A",
)


def test_product_path_follows_the_documented_template():
    """The product path is /HRWSI/<type>/<condition>/<tile>/<YYYY>/<MM>/<DD>/<name>."""
    assert product_name(SOURCE) == "S2_MAJA_L2A_31TCH_20260304T102031_42"
    assert product_path(SOURCE) == (
        "/HRWSI/L2A/MAJA_PC/31TCH/2026/03/04/S2_MAJA_L2A_31TCH_20260304T102031_42"
    )


def test_product_path_cannot_escape_its_folder():
    """A tile with '/' or '..' cannot climb out of the template's folders."""
    evil = ProductInput(1, "..", "../../etc", datetime(2026, 1, 1), "L2A", "X")
    path = product_path(evil)
    assert ".." not in path.split("/") and path.count("/") == 8
