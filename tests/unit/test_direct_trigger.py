import pytest

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.taskref import MAX_TASK_IDS, TaskRef
from aitask_relay.triggers.direct import parse_fetch_request


def test_one_task_id():
    request = parse_fetch_request({"TaskId": "t-1"})
    assert request.refs == (TaskRef("t-1"),) and request.include_template is False


def test_several_task_ids_keep_their_order_and_include_template():
    request = parse_fetch_request({"TaskIds": ["t-2", "t-1", "t-2"], "IncludeTemplate": True})
    assert [r.task_id for r in request.refs] == ["t-2", "t-1", "t-2"]
    assert request.include_template is True


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ("t-1", "must be a JSON object, got str"),
        (["t-1"], "must be a JSON object, got list"),
        (None, "must be a JSON object, got NoneType"),
        ({}, "TaskId is missing"),
        ({"TaskId": "t-1", "TaskIds": ["t-2"]}, "not both"),
        ({"TaskIds": []}, "non-empty list"),
        ({"TaskIds": "t-1"}, "non-empty list"),
        ({"TaskIds": ["t-1", "../x"]}, "TaskIds[1]"),
        ({"TaskIds": ["t-1", None]}, "TaskIds[1] is missing"),
        ({"TaskIds": ["t"] * (MAX_TASK_IDS + 1)}, f"at most {MAX_TASK_IDS}"),
        ({"TaskId": "t-1", "IncludeTemplate": "yes"}, "IncludeTemplate must be true or false"),
        ({"TaskId": ""}, "TaskId is empty"),
    ],
)
def test_bad_events_raise_invalid_input_naming_the_problem(event, fragment):
    # Given a malformed direct-invocation event / When parsed / Then InvalidInput names the problem
    with pytest.raises(InvalidInput) as caught:
        parse_fetch_request(event)
    assert fragment in str(caught.value)
