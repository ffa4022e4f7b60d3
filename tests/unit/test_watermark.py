"""The sweep watermark's names and stored form (no sockets: the backends are exercised in
tests/integration/test_sweep_window.py)."""

from datetime import UTC, datetime

import pytest

from aitask_relay.watermark import NotAWatermark, RedisWatermark, decode, encode, scope


def test_the_scope_separates_deployments_but_not_password_rotations():
    base = scope("cn-hangzhou", None, ["s3://b/templates/", "amqps://u:***@host/vhost"])
    assert base == scope("cn-hangzhou", None, ["amqps://u:***@host/vhost", "s3://b/templates/"])  # order
    assert base != scope("cn-shanghai", None, ["s3://b/templates/", "amqps://u:***@host/vhost"])
    assert base != scope("cn-hangzhou", None, ["s3://b/other/", "amqps://u:***@host/vhost"])


def test_a_redis_watermark_is_named_without_its_password():
    mark = RedisWatermark("redis://:pa%40ssw0rd@cache.internal:6379/2", "abc", client=object())
    assert "ssw0rd" not in mark.name and mark.name.endswith("key aitask-relay.sweep-watermark:abc")


def test_the_stored_form_round_trips_and_garbage_is_a_value_error():
    started = datetime(2026, 11, 30, 4, 0, 0, tzinfo=UTC)
    assert decode(encode(started)) == started and decode(None) is None
    for garbage in (b"{not json", b"[]", b'{"last_complete_sweep_start": "2026-11-30T04:00:00"}', b"\xff"):
        with pytest.raises(NotAWatermark, match=r"^the sweep watermark "):
            decode(garbage)
    assert issubclass(NotAWatermark, ValueError)  # a caller catching ValueError still sees it
