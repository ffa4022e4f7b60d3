"""core.limits: the adaptive concurrency limit (pure: no threads, no sockets, no time)."""

import pytest

from aitask_relay.core.limits import AdaptiveLimit


def test_it_starts_at_the_maximum():
    # Given a new limit of 32 / Then 32 tasks may run at once
    assert AdaptiveLimit(32).current == 32


def test_a_throttled_task_halves_it_and_each_success_adds_one_back_up_to_the_maximum():
    # Given a limit of 32
    limit = AdaptiveLimit(32)
    # When a task started now is throttled
    assert limit.throttled(limit.started()) == 16
    # Then it is halved; and 20 successes bring it back to 32, never past it
    assert limit.current == 16
    for expected in [*range(17, 33), 32, 32, 32, 32]:
        limit.succeeded()
        assert limit.current == expected


def test_it_never_goes_below_the_minimum():
    # Given a limit of 5 whose minimum is 2
    limit = AdaptiveLimit(5, minimum=2)
    # When tasks of each new epoch are throttled
    seen = [limit.throttled(limit.started()) for _ in range(4)]
    # Then it goes 5 -> 2 (5 // 2) and stays there, saying nothing changed
    assert seen == [2, None, None, None] and limit.current == 2


def test_an_odd_limit_rounds_down_but_one_stays_one():
    limit = AdaptiveLimit(3)
    assert limit.throttled(limit.started()) == 1
    assert limit.throttled(limit.started()) is None and limit.current == 1


def test_tasks_started_before_a_shrink_do_not_shrink_it_again():
    # Given 8 tasks started together under a limit of 32
    limit = AdaptiveLimit(32)
    epochs = [limit.started() for _ in range(8)]
    # When all 8 come back throttled
    changes = [limit.throttled(epoch) for epoch in epochs]
    # Then only the first halves it: the others were started at the old rate and say nothing new
    assert changes == [16] + [None] * 7 and limit.current == 16
    # And a task started after the shrink that is throttled halves it again
    assert limit.throttled(limit.started()) == 8


def test_a_success_does_not_open_a_new_epoch():
    # Given a task started, then a shrink by another task of the same epoch, then successes
    limit = AdaptiveLimit(16)
    early, other = limit.started(), limit.started()
    limit.throttled(other)
    limit.succeeded()
    # When the early task is throttled / Then it changes nothing: it was started before the shrink
    assert limit.throttled(early) is None and limit.current == 9


@pytest.mark.parametrize(("maximum", "minimum"), [(0, 1), (4, 0), (4, 5)])
def test_a_limit_needs_one_or_more_and_a_minimum_within_the_maximum(maximum, minimum):
    with pytest.raises(ValueError, match="1 <= minimum <= maximum"):
        AdaptiveLimit(maximum, minimum=minimum)
