"""RosClient's per-call bounds from the invocation's remaining time (no socket: the SDK client is a fake)."""

from __future__ import annotations

import time

import pytest

from aitask_relay.adapters.ros import RosClient, retry_options
from aitask_relay.core.errors import UpstreamUnavailable
from aitask_relay.core.settings import RosSettings
from aitask_relay.core.taskref import TaskRef
from aitask_relay.usecases.relay import unique_by_task

SETTINGS = RosSettings(connect_timeout_ms=1000, read_timeout_ms=2000, max_attempts=3)  # 3 s an attempt


def client():
    return RosClient(SETTINGS, client=object(), create_client=object())


@pytest.mark.parametrize(("left_ms", "attempts"), [(60_000, 3), (19_500, 3), (18_500, 2), (11_500, 2), (10_000, 1)])
def test_as_many_whole_attempts_as_fit_before_the_deadline(left_ms, attempts):
    # Given a call's worst case of n attempts: n x 3 s + (n - 1) x 5 s backoff (19 s, 11 s, 3 s)
    # When a call must end within left_ms / Then it gets the attempts that fit, with the usual timeouts
    got, runtime = client().bounded(time.monotonic() + left_ms / 1000)
    assert got == attempts and runtime.read_timeout is None and runtime.connect_timeout is None


def test_less_than_one_attempt_shrinks_the_timeouts_to_the_time_left():
    attempts, runtime = client().bounded(time.monotonic() + 1.5)
    assert attempts == 1
    assert runtime.connect_timeout <= 750 and runtime.connect_timeout + runtime.read_timeout <= 1500


def test_no_time_left_is_a_retryable_error_without_a_call():
    with pytest.raises(UpstreamUnavailable, match="ms left in the invocation") as caught:
        client().bounded(time.monotonic() + 0.05)
    assert caught.value.retryable


def test_the_sdk_never_waits_longer_than_the_arithmetic_assumes():
    # x-acs-retry-after and the backoff are both capped at the maxDelay that call_worst_case_ms counts
    for condition in retry_options(3).retry_condition:
        assert condition.max_delay == 5000 and condition.backoff.cap == 5000
    assert SETTINGS.call_worst_case_ms() == 19_000 and SETTINGS.call_worst_case_ms(1) == 3_000


def test_one_task_twice_is_one_reference_and_a_disagreement_means_a_probe():
    refs = [TaskRef("t-1"), TaskRef("t-2", "SUCCESS"), TaskRef("t-1", "SUCCESS"), TaskRef("t-2", "SUCCESS")]
    assert unique_by_task(refs) == [TaskRef("t-1"), TaskRef("t-2", "SUCCESS")]
    assert unique_by_task([TaskRef("t-3", "SUCCESS"), TaskRef("t-3")]) == [TaskRef("t-3")]


def test_a_call_failing_with_its_attempts_cut_by_the_deadline_says_so():
    # Given SDK clients whose every call fails retryably (an SDK error with a 503), on a client given a deadline
    class Failing:
        def __getattr__(self, method):
            def call(*args):
                from darabonba.exceptions import ResponseException

                raise ResponseException(code="ServiceUnavailable", message="down", status_code=503)

            return call

    ros = RosClient(SETTINGS, client=Failing(), create_client=object())
    ros._client_with = lambda attempts: Failing()
    # When the call has 60 s (every attempt fits), then 12 s (two of three), then 50 ms (none is made)
    outcomes = []
    for left in (60.0, 12.0, 0.05):
        with pytest.raises(UpstreamUnavailable) as caught:
            ros.template_summary("{}", deadline=time.monotonic() + left)
        outcomes.append(caught.value.cut_short)
    # Then only the failures the deadline cut are marked so (their retries were not spent)
    assert outcomes == [False, True, True]
    with pytest.raises(UpstreamUnavailable) as caught:  # and without a deadline, never
        ros.template_summary("{}")
    assert caught.value.cut_short is False
