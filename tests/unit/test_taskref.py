import pytest

from aitask_relay.core.errors import InvalidInput
from aitask_relay.core.taskref import validate_task_id


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


# --- issue 14, item 10: ids ROS returns, and their storage keys -----------------------------------------

from aitask_relay.core.taskref import ros_task_id, storage_key  # noqa: E402

ROS_IDS = ["t-ABC:1", "t/../x", "任务-1", "t 1", ".x", "t" * 300, "~x", "t-1.", "_aitask-relay"]


@pytest.mark.parametrize("task_id", [*ROS_IDS, "t-asasas12345"])
def test_an_id_ros_returned_is_accepted_as_it_is(task_id):
    # Given an id CreateAITask or ListAITasks returned (ROS documents no pattern for it)
    # When it is checked as a ROS id, Then it comes back unchanged
    assert ros_task_id(task_id) == task_id


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "is missing"),
        ("", "is empty"),
        (7, "must be a string"),
        ("x" * 1025, "too long"),
        ("t\n1", "control character"),
        ("t\x7f", "control character"),
        ("t\ud800", "not valid Unicode"),
        ("t\ufffe", "not valid Unicode"),
    ],
)
def test_an_id_that_cannot_be_a_ros_id_is_invalid_input(value, fragment):
    # Given something no ROS id can be / When checked / Then InvalidInput names the problem
    with pytest.raises(InvalidInput, match=fragment):
        ros_task_id(value, "CreateAITask's TaskId")


@pytest.mark.parametrize("task_id", ["t-asasas12345", "a", "T_1.b-2", "x" * 128])
def test_an_id_of_our_pattern_is_its_own_storage_key(task_id):
    # Given an id our strict pattern accepts (every id delivered so far) / Then its key is unchanged
    assert storage_key(task_id) == task_id


def test_storage_keys_of_other_ids_are_safe_bounded_and_distinct():
    # Given ids outside our pattern, and ids that look like their escaped forms
    ids = [*ROS_IDS, "t" * 301, "~74", "t-ABC~3A1", "t-ABC%3A1", "t.", "任务-2"]
    keys = [storage_key(i) for i in ids]
    # Then every key is a single safe path segment: ASCII letters, digits, '-', '_', '~', '.', at most 128
    # characters, not starting with a dot or an underscore, never '.' or '..'
    for key in keys:
        assert 0 < len(key) <= 128 and key.isascii() and all(c.isalnum() or c in "-_~." for c in key), key
        assert key[0] not in "._" and key not in (".", "..")
    # and no two ids share a key (including with ids of our own pattern)
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {"t-ABC", "x", "t"}
