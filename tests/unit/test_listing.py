"""list_recent (usecases/listing.py): filters, order, and where paging stops; an in-memory listing (no sockets)."""

from datetime import UTC, datetime, timedelta

import pytest

from aitask_relay.core.errors import InvalidInput
from aitask_relay.usecases.listing import list_recent

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Pages:
    def __init__(self, *pages):
        self.pages, self.asked = pages, []

    def list_tasks(self, *, next_token=None, max_results=50, task_type=None):
        index = int(next_token or 0)
        self.asked.append((index, task_type))
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return {"Tasks": self.pages[index], "NextToken": token}


def task(n, minutes_ago, status="SUCCESS"):
    created = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S")
    return {"TaskId": f"t-{n}", "TaskType": "GenerateTemplate", "Status": status, "CreateTime": created, "Prompt": "p"}


def test_tasks_since_a_time_newest_first_and_paging_stops_past_it():
    # Given a newest-first listing whose second page is already older than the window
    lister = Pages([task(1, 5), task(2, 50, "RUNNING")], [task(3, 200)], [task(4, 300)])
    # When the tasks of the last hour are listed
    listing = list_recent(lister, since=NOW - timedelta(hours=1), clock=lambda: NOW)
    # Then the two recent ones, newest first; the third page was never asked for
    assert [t.task_id for t in listing.tasks] == ["t-1", "t-2"]
    assert [index for index, _ in lister.asked] == [0, 1] and listing.complete


def test_a_listing_out_of_order_is_read_to_its_end_and_sorted():
    lister = Pages([task(1, 200), task(2, 5)], [task(3, 300), task(4, 10, "FAILURE")])
    listing = list_recent(lister, since=NOW - timedelta(hours=1), statuses=["FAILURE", "SUCCESS"], clock=lambda: NOW)
    assert [t.task_id for t in listing.tasks] == ["t-2", "t-4"] and len(lister.asked) == 2


def test_a_status_filter_and_the_type_filter_ros_applies():
    lister = Pages([task(1, 5), task(2, 6, "RUNNING")])
    listing = list_recent(lister, since=None, statuses=["RUNNING"], task_type="FixTemplate", clock=lambda: NOW)
    assert [t.task_id for t in listing.tasks] == ["t-2"] and lister.asked == [(0, "FixTemplate")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"statuses": ["DONE"]}, "status"), ({"task_type": "Deploy"}, "task_type"),
     ({"since": NOW + timedelta(hours=1)}, "since")],
)  # fmt: skip
def test_bad_filters_are_refused_naming_the_field_before_any_call(kwargs, field):
    lister = Pages([task(1, 5)])
    with pytest.raises(InvalidInput) as raised:
        list_recent(lister, **({"since": None} | kwargs), clock=lambda: NOW)
    assert raised.value.field == field and lister.asked == []
