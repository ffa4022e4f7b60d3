import pytest

from aitask_relay.errors import InvalidInput
from aitask_relay.taskref import validate_task_id


@pytest.mark.parametrize("task_id", ["t-asasas12345", "a", "T_1.b-2", "x" * 128, "0abc"])
def test_valid_task_ids_are_returned_unchanged(task_id):
    # Given a well-formed id / When validated / Then it comes back as it was
    assert validate_task_id(task_id) == task_id


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "TaskId is missing"),
        ("", "TaskId is empty"),
        (42, "must be a string, got int"),
        (["t-1"], "must be a string, got list"),
        ("x" * 129, "too long (129 characters"),
        ("../x", "is not a task id"),
        ("a/b", "is not a task id"),
        ("t-1\n", "is not a task id"),
        (".hidden", "is not a task id"),
        ("-t", "is not a task id"),
        ("t 1", "is not a task id"),
        ("t-é", "is not a task id"),
        ("t-1\x00", "is not a task id"),
    ],
)
def test_invalid_task_ids_raise_invalid_input_naming_the_problem(value, fragment):
    # Given a bad id / When validated / Then InvalidInput says what is wrong with it
    with pytest.raises(InvalidInput) as caught:
        validate_task_id(value)
    assert fragment in str(caught.value)
    assert caught.value.code == "invalid_input" and caught.value.retryable is False


def test_the_trailing_newline_is_visible_in_the_message():
    # Given an id with a trailing newline (a classic copy-paste error)
    # When validated / Then the message shows the newline instead of hiding it
    with pytest.raises(InvalidInput, match=r"'t-1\\n'"):
        validate_task_id("t-1\n")
