"""ros.check_answer: what a 200 answer of ListAITasks or CreateAITask must be, judged on the parsed body before
the SDK's model hides it (a unit test of one module: no sockets)."""

import pytest

from aitask_relay.adapters.ros import check_answer
from aitask_relay.core.errors import AccessDenied, BadUpstreamResponse, UpstreamUnavailable


@pytest.mark.parametrize(
    ("action", "body", "error"),
    [
        ("ListAITasks", {"Tasks": "none"}, BadUpstreamResponse),
        ("ListAITasks", {"Tasks": None, "NextToken": "x"}, BadUpstreamResponse),
        ("ListAITasks", ["not", "an", "object"], BadUpstreamResponse),
        ("ListAITasks", {"Tasks": [], "Success": "FALSE", "HttpStatusCode": 502}, UpstreamUnavailable),
        ("CreateAITask", {"TaskId": "", "RequestId": "R"}, BadUpstreamResponse),
        ("CreateAITask", {"TaskId": "t-1", "Code": "Forbidden.RAM"}, AccessDenied),
    ],
)
def test_an_answer_that_is_an_error_or_lacks_its_field_raises(action, body, error):
    # Given a 200 answer that says it failed, or lacks the field the call exists to return
    # When it is checked / Then the classified error is raised
    with pytest.raises(error):
        check_answer(action, body)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("ListAITasks", {"Tasks": [], "NextToken": "", "Success": "true", "HttpStatusCode": 200}),
        ("CreateAITask", {"TaskId": "t-1", "Code": "OK", "Success": True}),
        ("GetAITask", {"Code": "Forbidden"}),  # GetAITask is normalize's to judge
    ],
)
def test_a_usable_answer_passes(action, body):
    # Given a usable answer (an unknown Code on it is not an error) / When checked / Then nothing is raised
    check_answer(action, body)
