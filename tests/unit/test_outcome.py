"""core.outcome: the one done / pending / retry / permanent decision every trigger makes about a result."""

import pytest

from aitask_relay.core.model import Delivery, ErrorRecord, TaskResult
from aitask_relay.core.outcome import Outcome, failures_of, outcome_of


def error(retryable, code="upstream_unavailable"):
    return ErrorRecord(code, f"{code} happened", retryable)


def result(*, status="SUCCESS", terminal=True, err=None, deliveries=()):
    return TaskResult(task_id="t-1", observed_at="2026-11-30T00:00:00Z", status=status, terminal=terminal,
                      error=err, deliveries=tuple(deliveries))  # fmt: skip


def delivered(outcome, err=None):
    return Delivery("s3://b/", None if outcome == "failed" else "s3://b/t-1/task.json", outcome, err)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (result(deliveries=[delivered("created"), delivered("already_present")]), Outcome.DONE),
        (result(), Outcome.DONE),  # no destination configured: nothing left to do
        (result(status="RUNNING", terminal=False), Outcome.PENDING),
        (result(status=None, terminal=False, err=error(True)), Outcome.RETRY),
        (result(status=None, terminal=False, err=error(False, "not_found")), Outcome.PERMANENT),
        (result(deliveries=[delivered("created"), delivered("failed", error(True))]), Outcome.RETRY),
        (result(deliveries=[delivered("failed", error(False, "destination_failure"))]), Outcome.PERMANENT),
        # one delivery no retry can fix beside one a retry can: retried (the permanent one is repeated harmlessly)
        (result(deliveries=[delivered("failed", error(False)), delivered("failed", error(True))]), Outcome.RETRY),
        # a failure that says nothing of itself is retried, never dropped on a guess
        (result(deliveries=[delivered("failed")]), Outcome.RETRY),
    ],
)
def test_each_result_has_one_outcome(given, expected):
    # Given a result / When it is judged / Then it has the one outcome every trigger acts on
    assert outcome_of(given) is expected


def test_the_failures_are_the_results_own_error_else_each_failed_delivery():
    # Given a result that could not be observed, and one whose two deliveries failed
    unseen = result(status=None, terminal=False, err=error(True))
    two = result(deliveries=[delivered("failed", error(False, "a")), delivered("created"), delivered("failed")])
    # Then the failures are the error, and the failed deliveries' errors (a silent one counted as retryable)
    assert failures_of(unseen) == [error(True)]
    assert [(f.code, f.retryable) for f in failures_of(two)] == [("a", False), ("destination_failure", True)]
    assert failures_of(result(deliveries=[delivered("created")])) == []
