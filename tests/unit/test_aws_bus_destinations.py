"""eventbridge:// and sns:// destinations: their URIs (checked at cold start), an EventBridge entry's size and the
errors a PutEvents answer carries, with stub clients (moto answers every valid entry with success, so a failed
entry cannot be provoked there; tests/integration/test_aws_buses.py drives both against moto's server)."""

from __future__ import annotations

import json

import pytest

from aitask_relay.adapters.destinations.eventbridge import EventBridgeDestination
from aitask_relay.adapters.destinations.sns import SnsDestination
from aitask_relay.adapters.destinations.uri import parse_destination
from aitask_relay.config import load_config
from aitask_relay.core.errors import ConfigurationError, DestinationFailure
from aitask_relay.core.normalize import normalize

BUS_ARN = "arn:aws:events:eu-west-1:123456789012:event-bus/relay-bus"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:relay-topic.fifo"
DEFAULT = {"max_message_bytes": "262144"}


def finished(task_id="t-bus-1", result="Resources: {}\n", status="SUCCESS"):
    body = {"TaskId": task_id, "Status": status, "TaskType": "GenerateTemplate", "RequestId": "R-1"}
    if status == "SUCCESS":
        body["TaskOutput"] = {"Result": result}
    return normalize(body, task_id=task_id, observed_at="2026-11-30T00:00:00.000Z")


# --- URIs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "scheme", "target", "names", "params"),
    [
        ("eventbridge://relay-bus", "eventbridge", "eventbridge://relay-bus", "relay-bus", DEFAULT),
        ("eventbridge://default/", "eventbridge", "eventbridge://default", "default", DEFAULT),
        (f"eventbridge://{BUS_ARN}", "eventbridge", "eventbridge://relay-bus", BUS_ARN, DEFAULT),
        (
            "eventbridge://b.1_x-y?source=my.app&detail_type=Task+done&max_message_bytes=1048576",
            "eventbridge",
            "eventbridge://b.1_x-y",
            "b.1_x-y",
            {"source": "my.app", "detail_type": "Task done", "max_message_bytes": "1048576"},
        ),
        ("sns://relay-topic", "sns", "sns://relay-topic", "relay-topic", DEFAULT),
        ("sns://relay_topic.fifo", "sns", "sns://relay_topic.fifo", "relay_topic.fifo", DEFAULT),
        (f"sns://{TOPIC_ARN}", "sns", "sns://relay-topic.fifo", TOPIC_ARN, DEFAULT),
        ("sns://t?max_message_bytes=1024", "sns", "sns://t", "t", {"max_message_bytes": "1024"}),
    ],
)
def test_accepted_bus_and_topic_uris(uri, scheme, target, names, params):
    # Given a valid URI / When parsed / Then its bus or topic (name or ARN), its target and parameters are kept
    spec = parse_destination(uri)
    got = (spec.scheme, spec.kind, spec.target, spec.queue, dict(spec.params))
    assert got == (scheme, "queue", target, names, params)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("eventbridge://", "names no valid event bus (eventbridge://<bus name> or eventbridge://<event bus ARN>)"),
        ("eventbridge://bad!bus", "names no valid event bus"),
        ("eventbridge://bus/extra", "names no valid event bus"),
        ("eventbridge://" + "b" * 257, "names no valid event bus"),
        ("eventbridge://arn:aws:events:eu-west-1:12345:event-bus/b", "names no valid event bus"),
        ("eventbridge://arn:aws:sns:eu-west-1:123456789012:event-bus/b", "names no valid event bus"),
        ("eventbridge://arn:aws:events:eu-west-1:123456789012:rule/b", "names no valid event bus"),
        ("eventbridge://bus?colour=blue", "unknown query parameter 'colour' (accepted: source, detail_type, max_"),
        ("eventbridge://bus?source=aws.ec2", "source must be 1 to 256 printable ASCII characters, no space, not "),
        ("eventbridge://bus?source=AWS.custom", "source must be"),
        ("eventbridge://bus?source=", "source must be"),
        ("eventbridge://bus?source=my+app", "source must be"),
        ("eventbridge://bus?source=" + "s" * 257, "source must be"),
        ("eventbridge://bus?detail_type=", "detail_type must be 1 to 128 printable ASCII characters"),
        ("eventbridge://bus?detail_type=" + "d" * 129, "detail_type must be"),
        ("eventbridge://bus?detail_type=%C3%A9t%C3%A9", "detail_type must be"),
        ("eventbridge://bus?max_message_bytes=1023", "max_message_bytes must be an integer from 1024 to 1048576"),
        ("eventbridge://bus?max_message_bytes=1048577", "max_message_bytes must be an integer from 1024 to 1048576"),
        ("eventbridge://bus?max_message_bytes=2k", "max_message_bytes must be"),
        ("eventbridge://bus#frag", "takes no #fragment"),
        ("sns://", "names no valid SNS topic (sns://<topic name> or sns://<topic ARN>, up to 256 characters)"),
        ("sns://bad.topic", "names no valid SNS topic"),
        ("sns://topic/x", "names no valid SNS topic"),
        ("sns://" + "t" * 252 + ".fifo", "names no valid SNS topic"),
        ("sns://arn:aws:sns:eu-west-1:123456789012:", "names no valid SNS topic"),
        ("sns://arn:aws:sqs:eu-west-1:123456789012:t", "names no valid SNS topic"),
        ("sns://arn:aws:sns:eu-west-1:123456789012:t/x", "names no valid SNS topic"),
        ("sns://t?source=x", "unknown query parameter 'source' (accepted: max_message_bytes)"),
        ("sns://t?max_message_bytes=2000000", "max_message_bytes must be an integer from 1024 to 1048576"),
    ],
)
def test_bad_bus_and_topic_uris_fail_at_cold_start_naming_the_variable(uri, problem):
    # Given a bad entry among good ones / When the configuration is loaded
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": f"file:///tmp/ok,{uri}"})
    # Then the error names RELAY_DESTINATIONS and the entry, then the problem
    assert caught.value.message.startswith("RELAY_DESTINATIONS entry ")
    assert f"': {problem}" in caught.value.message


def test_the_longest_names_are_accepted():
    # Given a bus name of 256 characters and a FIFO topic name of 256 with its suffix / Then both are accepted
    assert parse_destination("eventbridge://" + "b" * 256).queue == "b" * 256
    assert parse_destination("sns://" + "t" * 251 + ".fifo").queue == "t" * 251 + ".fifo"


def test_a_bus_or_topic_named_by_name_and_by_arn_is_one_destination():
    # Given the same bus (or topic) named twice / Then the configuration refuses the duplicate
    for first, second in [("eventbridge://relay-bus", f"eventbridge://{BUS_ARN}"), ("sns://relay-topic.fifo", f"sns://{TOPIC_ARN}")]:
        with pytest.raises(ConfigurationError, match="RELAY_DESTINATIONS"):
            load_config({"RELAY_DESTINATIONS": f"{first},{second}"})


# --- EventBridge --------------------------------------------------------------------------------------


class StubEvents:
    """An EventBridge client that answers PutEvents with ``answer`` (or raises ``error``) and records entries."""

    def __init__(self, answer=None, error=None, describe_error=None):
        self.entries, self.described = [], []
        self.answer, self.error, self.describe_error = answer, error, describe_error

    def describe_event_bus(self, Name):
        self.described.append(Name)
        if self.describe_error is not None:
            raise self.describe_error
        return {"Name": Name}

    def put_events(self, Entries):
        self.entries += Entries
        if self.error is not None:
            raise self.error
        return self.answer or {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


def bus(uri="eventbridge://relay-bus", signer=None, **stub):
    client = StubEvents(**stub)
    return EventBridgeDestination.from_spec(parse_destination(uri), client=client, signer=signer), client


def signer():
    """A Standard Webhooks signer with one secret and a fixed clock."""
    import base64

    from aitask_relay.adapters.destinations.signing import Signer

    secret = "whsec_" + base64.b64encode(b"u" * 32).decode()
    return Signer(lambda: (secret,), clock=lambda: 1_780_000_000)


def test_an_entry_carries_the_cloudevent_as_detail_with_source_and_the_event_type():
    # Given a bus with default source and detail type
    dest, client = bus()
    # When a SUCCESS and a FAILURE are delivered
    first = dest.deliver(finished())
    dest.deliver(finished("t-bus-2", status="FAILURE"))
    # Then each entry goes to the bus, from aitask-relay, typed as the CloudEvent is, its Detail the CloudEvent
    (success, failure) = client.entries
    assert success["EventBusName"] == "relay-bus" and success["Source"] == "aitask-relay"
    assert (success["DetailType"], failure["DetailType"]) == (
        "com.aliyun.ros.aitask.succeeded",
        "com.aliyun.ros.aitask.failed",
    )
    event = json.loads(success["Detail"])
    assert event["id"] == "t-bus-1:SUCCESS" and event["data"]["template"] == "Resources: {}\n"
    assert first.outcome == "created" and first.location == "eventbridge://relay-bus#e-1"
    # and the bus was looked up once, before the first entry
    assert client.described == ["relay-bus"]


def test_a_fixed_detail_type_and_source_are_used_for_every_event():
    dest, client = bus("eventbridge://relay-bus?source=my.relay&detail_type=AI+task+finished")
    dest.deliver(finished(status="FAILURE"))
    (entry,) = client.entries
    assert (entry["Source"], entry["DetailType"]) == ("my.relay", "AI task finished")


@pytest.mark.parametrize(("detail_type", "signed"), [(None, False), ("x" * 128, False), (None, True)])
def test_the_entry_size_as_eventbridge_counts_it_stays_under_the_limit_and_no_further(detail_type, signed):
    # Given a bus limited to 2,048 bytes, a store that holds the template, and events signed or not (an embedded
    # signature is part of the Detail, so of the entry's size)
    from aitask_relay.core.model import Delivery

    query = "?max_message_bytes=2048&source=s" + (f"&detail_type={detail_type}" if detail_type else "")
    dest, client = bus(f"eventbridge://relay-bus{query}", signer=signer() if signed else None)
    stored = (Delivery("s3://b/", "s3://b/t-bus-1/template.yaml", "created"),)

    def entry_size(entry):  # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
        return sum(len(entry[k].encode()) for k in ("Source", "DetailType", "Detail"))

    dest.deliver(finished(result="Resources: {}\n#"), stored)
    room = (2048 - entry_size(client.entries[0])) // 2  # how many 2-byte characters the template has room for
    # When templates around the limit are delivered (each character 2 bytes in UTF-8)
    inline = []
    for padding in range(room - 10, room + 10):
        dest.deliver(finished(result="Resources: {}\n#" + "é" * padding), stored)
        inline.append("template" in json.loads(client.entries[-1]["Detail"])["data"])
    # Then every entry is smaller than 2,048 bytes, the larger ones went as claim checks, and the largest inline
    # one is within a character of the limit
    sizes = [entry_size(e) for e in client.entries[1:]]
    assert max(sizes) < 2048
    assert True in inline and False in inline
    largest_inline = max(s for s, i in zip(sizes, inline, strict=True) if i)
    assert largest_inline >= 2048 - 1 - 2
    assert all(("webhooksignature" in json.loads(e["Detail"])) is signed for e in client.entries)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("InternalFailure", True),
        ("ThrottlingException", True),
        ("SomethingNew", True),  # a code the table does not know: retrying costs a call, dropping loses the event
        ("AccessDeniedException", False),
        ("InvalidAccountIdException", False),
        ("InvalidArgument", False),
        ("MalformedDetail", False),
        ("RedactionFailure", False),
        ("NotAuthorizedForSourceException", False),
        ("NotAuthorizedForDetailTypeException", False),
    ],
)
def test_a_failed_entry_in_a_200_answer_is_a_delivery_failure_by_the_one_table(code, retryable):
    # Given PutEvents answering 200 with the entry failed (API_PutEventsResultEntry.html's codes)
    answer = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "no"}]}
    dest, _client = bus(answer=answer)
    # When delivered / Then the failure names the bus and the code, retryable as the documentation says
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is retryable and caught.value.upstream_code == code
    assert caught.value.message == f"eventbridge://relay-bus: {code}: no"


def test_a_failed_entry_without_a_message_is_named_by_its_code():
    dest, _client = bus(answer={"FailedEntryCount": 1, "Entries": [{"ErrorCode": "MalformedDetail"}]})
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.message == "eventbridge://relay-bus: MalformedDetail" and caught.value.retryable is False


def test_an_answer_without_an_event_id_is_not_taken_for_a_delivery():
    dest, _client = bus(answer={"FailedEntryCount": 0, "Entries": [{}]})
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is True and "refused without an error code" in caught.value.message


def test_a_bus_the_role_may_not_describe_is_published_to_with_one_warning(caplog):
    # Given a role without events:DescribeEventBus
    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeEventBus")
    dest, client = bus(describe_error=denied)
    # When two tasks are delivered
    outcomes = [dest.deliver(finished()).outcome, dest.deliver(finished("t-bus-2")).outcome]
    # Then both are published, the bus was asked once, and one warning says what to grant
    assert outcomes == ["created", "created"] and len(client.entries) == 2 and client.described == ["relay-bus"]
    assert [r.getMessage() for r in caplog.records].count(
        "eventbridge://relay-bus: cannot check that the event bus exists (AccessDeniedException); PutEvents may "
        "answer success for a bus that does not exist: grant events:DescribeEventBus on it"
    ) == 1


def test_a_bus_arn_sends_to_its_own_region():
    dest = EventBridgeDestination.from_spec(parse_destination(f"eventbridge://{BUS_ARN}"))
    assert dest._region == "eu-west-1"
    assert EventBridgeDestination.from_spec(parse_destination("eventbridge://b"))._region is None


# --- SNS ----------------------------------------------------------------------------------------------


class StubSns:
    class meta:  # botocore's client.meta
        partition, region_name = "aws-cn", "cn-north-1"

    def __init__(self):
        self.published = []

    def publish(self, **request):
        self.published.append(request)
        return {"MessageId": "m-1"}


class StubSts:
    def __init__(self):
        self.calls = 0

    def get_caller_identity(self):
        self.calls += 1
        return {"Account": "210987654321"}


def test_a_topic_name_becomes_an_arn_in_the_callers_account_region_and_partition_once():
    # Given a topic named by name
    client, sts = StubSns(), StubSts()
    dest = SnsDestination("relay-topic", name="sns://relay-topic", max_bytes=262_144, client=client, sts=sts)
    # When two tasks are published
    dest.deliver(finished())
    location = dest.deliver(finished("t-bus-2")).location
    # Then both went to the ARN made from STS's account and the client's region and partition, asked once
    arn = "arn:aws-cn:sns:cn-north-1:210987654321:relay-topic"
    assert [p["TopicArn"] for p in client.published] == [arn, arn] and sts.calls == 1
    assert location == f"{arn}#m-1"
    # and a standard topic gets neither a group nor a deduplication id
    assert not {"MessageGroupId", "MessageDeduplicationId"} & set(client.published[0])


def test_a_topic_arn_is_used_as_given_and_names_the_region():
    client, sts = StubSns(), StubSts()
    dest = SnsDestination(TOPIC_ARN, name=f"sns://{TOPIC_ARN}", max_bytes=262_144, client=client, sts=sts)
    dest.deliver(finished())
    assert client.published[0]["TopicArn"] == TOPIC_ARN and sts.calls == 0 and dest._region == "eu-west-1"
    # A FIFO topic: group = the task id's storage key, deduplication id = the event id
    assert client.published[0]["MessageGroupId"] == "t-bus-1"
    assert client.published[0]["MessageDeduplicationId"] == "t-bus-1:SUCCESS"


@pytest.mark.parametrize("signed", [False, True])
def test_the_attributes_count_against_the_topics_limit(signed):
    # Given a topic limited to 2,048 bytes, a store that holds the template, and messages signed or not (the three
    # signature attributes count as the others do)
    from aitask_relay.adapters.destinations.sqs import attributes_bytes
    from aitask_relay.core.model import Delivery

    client = StubSns()
    dest = SnsDestination(
        TOPIC_ARN, name="sns://t", max_bytes=2048, client=client, sts=StubSts(), signer=signer() if signed else None
    )
    stored = (Delivery("s3://b/", "s3://b/t-bus-1/template.yaml", "created"),)
    def total(request):  # what SNS counts: the body and every attribute's name, type and value
        attributes = {k: v["StringValue"] for k, v in request["MessageAttributes"].items()}
        return len(request["Message"].encode()) + attributes_bytes(attributes)

    dest.deliver(finished(result="Resources: {}\n#"), stored)
    room = 2048 - total(client.published[0])
    # When templates around the limit are published
    for padding in range(room - 10, room + 10):
        dest.deliver(finished(result="Resources: {}\n#" + "x" * padding), stored)
    # Then each stays within 2,048 bytes, the largest inline one exactly at it, the larger ones as claim checks
    inline = [total(p) for p in client.published[1:] if "template" in json.loads(p["Message"])["data"]]
    assert max(total(p) for p in client.published) <= 2048 and max(inline) == 2048
    assert all(("webhook-signature" in p["MessageAttributes"]) is signed for p in client.published)
    assert any("template_ref" in json.loads(p["Message"])["data"] for p in client.published)
