"""acs-eventbridge:// without a socket: the URI's checks, the id EventBridge takes, and the size arithmetic (the
event as the SDK writes it is at most the relay's CloudEvent; destinations/acs_eventbridge.py)."""

from __future__ import annotations

import json

import pytest

from aitask_relay.adapters.destinations.acs_eventbridge import (
    ACS_EVENT_MAX_BYTES,
    AcsEventBridgeDestination,
    _event_model,
    wire_id,
)
from aitask_relay.adapters.destinations.message import build_message
from aitask_relay.adapters.destinations.uri import parse_destination
from aitask_relay.core.errors import ConfigurationError

ENDPOINT = "eventbridge-console.cn-hangzhou.aliyuncs.com"


def test_a_bus_and_its_endpoint_are_the_spec():
    spec = parse_destination(f"acs-eventbridge://relay-bus?endpoint={ENDPOINT}")
    assert (spec.scheme, spec.kind, spec.queue) == ("acs-eventbridge", "queue", "relay-bus")
    assert spec.params == {"endpoint": f"https://{ENDPOINT}"} and spec.name == spec.uri
    # A loopback stand-in may be reached over http://, as the mns:// tests do
    loopback = parse_destination("acs-eventbridge://relay-bus?endpoint=http://127.0.0.1:8080")
    assert loopback.params == {"endpoint": "http://127.0.0.1:8080"}


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("acs-eventbridge://relay-bus", "needs exactly one ?endpoint=<host>"),
        (f"acs-eventbridge://relay-bus?endpoint={ENDPOINT}&region=cn-hangzhou", "needs exactly one ?endpoint=<host>"),
        (f"acs-eventbridge://relay-bus?endpoint={ENDPOINT}&endpoint=x", "gives 'endpoint' twice"),
        (f"acs-eventbridge://relay-bus/events?endpoint={ENDPOINT}", "has a path"),
        (f"acs-eventbridge://key:secret@relay-bus?endpoint={ENDPOINT}", "takes no user@"),
        (f"acs-eventbridge://relay_bus?endpoint={ENDPOINT}", "is not an event bus name"),
        (f"acs-eventbridge://-bus?endpoint={ENDPOINT}", "is not an event bus name"),
        (f"acs-eventbridge://{'b' * 128}?endpoint={ENDPOINT}", "is not an event bus name"),
        (f"acs-eventbridge://default?endpoint={ENDPOINT}", "a name EventBridge reserves"),
        (f"acs-eventbridge://eventbridge-reserved-x?endpoint={ENDPOINT}", "a name EventBridge reserves"),
        ("acs-eventbridge://relay-bus?endpoint=http://eventbridge.example.com", "http:// only to a loopback host"),
        ("acs-eventbridge://relay-bus?endpoint=https://host/path", "is not host[:port]"),
        ("acs-eventbridge://relay-bus?endpoint=ftp://host", "host[:port] or an http(s):// URL"),
        (f"acs-eventbridge://DEFAULT?endpoint={ENDPOINT}", "a name EventBridge reserves"),
        (f"acs-eventbridge://EventBridge-Reserved-x?endpoint={ENDPOINT}", "a name EventBridge reserves"),
        # a host that is no host: refused once at cold start, not sent to fail each delivery retryably
        ("acs-eventbridge://relay-bus?endpoint=a%20b.com", "is not host[:port] (DNS labels"),
        ("acs-eventbridge://relay-bus?endpoint=%00evil.com", "is not host[:port] (DNS labels"),
        ("acs-eventbridge://relay-bus?endpoint=evil.com%0d%0aX-Injected:1", "is not host[:port] (DNS labels"),
        (f"acs-eventbridge://relay-bus?endpoint={ENDPOINT};secret=whsec_SECRETVALUE123", "is not host[:port]"),
        (f"acs-eventbridge://relay-bus?endpoint={ENDPOINT}:99999", "a port from 1 to 65535"),
        ("acs-eventbridge://relay-bus?endpoint=-bad.example.com", "is not host[:port] (DNS labels"),
    ],
)
def test_a_bad_uri_fails_at_cold_start_naming_the_problem(uri, problem):
    with pytest.raises(ConfigurationError) as caught:
        parse_destination(uri)
    assert problem in caught.value.message and "key:secret" not in caught.value.message
    assert "SECRETVALUE" not in caught.value.message and "evil" not in caught.value.message.partition(": ")[2]


@pytest.mark.parametrize(
    "endpoint",
    [f"{ENDPOINT}:443", ENDPOINT.upper(), f"{ENDPOINT}.", f"https://{ENDPOINT}", f"https://{ENDPOINT.upper()}.:443"],
)
def test_one_bus_on_one_endpoint_written_two_ways_is_one_target(endpoint):
    # Given the same bus twice, its endpoint written another way (case, trailing dot, the default port)
    # When both are one deployment's destinations / Then the cold start refuses the second as the same destination
    first = parse_destination(f"acs-eventbridge://relay-bus?endpoint={ENDPOINT}")
    second = parse_destination(f"acs-eventbridge://relay-bus?endpoint={endpoint}")
    assert second.target == first.target and second.params == {"endpoint": f"https://{ENDPOINT}"}


def test_the_longest_bus_name_is_taken():
    assert parse_destination(f"acs-eventbridge://{'b' * 127}?endpoint={ENDPOINT}").queue == "b" * 127


@pytest.mark.parametrize(
    ("event_id", "sent"),
    [("t-1:SUCCESS", "t-1-SUCCESS"), ("abc123:FAILURE", "abc123-FAILURE"), ("T9:SUCCESS", "T9-SUCCESS")],
)
def test_an_id_eventbridge_takes_only_loses_its_colon(event_id, sent):
    assert wire_id(event_id) == sent


@pytest.mark.parametrize("task", ["t_1", "t.1", "~t~2F", "t" * 125, "t" * 128])
def test_any_other_id_is_hashed_within_the_rules_and_stays_one_per_event(task):
    sent = wire_id(f"{task}:SUCCESS")
    assert sent.startswith("h") and sent.endswith("-SUCCESS") and len(sent) <= 128
    assert sent.replace("-", "").isalnum() and sent == wire_id(f"{task}:SUCCESS") != wire_id(f"{task}:FAILURE")


def test_the_event_as_the_sdk_writes_it_is_no_larger_than_the_cloudevent(finished_observation):
    # Given a CloudEvent of the relay, with an extension attribute and non-ASCII text, at the 64 KB limit
    message = build_message(finished_observation, (), limit=ACS_EVENT_MAX_BYTES, where="w", wire_id=wire_id)
    event = json.loads(message.body)
    event["aitaskstage"] = "Generate:Running"
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    # When the SDK's model writes it (its names for the standard attributes, the extension kept)
    written = _event_model()(event).to_map()
    sent = json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode()  # as DaraCore.to_json_string
    # Then every attribute is there and the event is no larger: a CloudEvent within 64 KB is an event within it
    assert written["Id"] == event["id"] == "t-unit-1-SUCCESS" and written["aitaskstage"] == "Generate:Running"
    assert written["Data"] == event["data"] and len(sent) <= len(body)


def test_the_destination_keeps_events_within_64_kb():
    dest = AcsEventBridgeDestination("relay-bus", f"https://{ENDPOINT}", name="n")
    assert dest._body_limit(None, ()) == ACS_EVENT_MAX_BYTES == 65_536  # type: ignore[arg-type]


@pytest.fixture
def finished_observation():
    from aitask_relay.core.normalize import normalize

    body = {"TaskId": "t-unit-1", "Status": "SUCCESS", "TaskType": "GenerateTemplate", "RequestId": "R-1"}
    body["TaskOutput"] = {"Result": "Resources: {}\n# été ✓\n"}
    return normalize(body, task_id="t-unit-1", observed_at="2026-01-01T00:00:00Z")
