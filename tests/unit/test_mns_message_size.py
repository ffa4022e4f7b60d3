"""The MNS destination's size arithmetic: MNS's limit is on the base64 body as sent (see destinations/mns.py)."""

from __future__ import annotations

import base64

import pytest

from aitask_relay.adapters.destinations.mns import base64_capacity


@pytest.mark.parametrize("limit", [1024, 1025, 1026, 1027, 4096, 49_153, 65_536])
def test_the_capacity_is_the_largest_body_whose_base64_fits(limit):
    # Given a queue's MaximumMessageSize; Then a body of the capacity fits once base64-encoded, one byte more does not
    capacity = base64_capacity(limit)
    assert len(base64.b64encode(b"x" * capacity)) <= limit < len(base64.b64encode(b"x" * (capacity + 1)))


def test_a_64_kb_queue_takes_48_kib_of_json():
    # MNS: "the total size of the original messages cannot exceed 47 KB" of a 64 KB batch, rounded down there
    assert base64_capacity(65_536) == 49_152
