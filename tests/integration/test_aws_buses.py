"""eventbridge:// and sns:// against moto's server: what a consumer receives (through an EventBridge rule and an SNS
subscription to SQS), the ledger, claim checks, a missing bus or topic, an unreachable endpoint, no secret shown."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from test_destinations import big_yaml
from test_destinations import finished as finished_task

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.core.errors import DestinationFailure
from relay_devkit.runner import LambdaContext, load_handler
from relay_devkit.servers import closed_port, unique

YAML = "Resources:\n  Vpc:\n    Type: ALIYUN::ECS::VPC\n"


def finished(task_id="t-bus-1", **fields):
    """A finished task (test_destinations.finished) under this module's task id."""
    return finished_task(task_id, **fields)


@pytest.fixture
def buses(aws):
    """EventBridge and SNS clients on moto, and helpers that route a bus or a topic to a fresh SQS queue."""
    return Buses(aws)


class Buses:
    def __init__(self, aws):
        import boto3

        self.aws = aws
        self.events = boto3.client("events", endpoint_url=aws.endpoint)
        self.sns = boto3.client("sns", endpoint_url=aws.endpoint)

    def queue_arn(self, url):
        return self.aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def bus_to_queue(self, pattern=None):
        """A new bus whose one rule sends the relay's events (or ``pattern``'s) to a new queue: (bus, queue url)."""
        bus = unique("bus")
        self.events.create_event_bus(Name=bus)
        _name, url = self.aws.queue()
        rule = unique("rule")
        self.events.put_rule(
            Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern or {"source": ["aitask-relay"]})
        )
        self.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": self.queue_arn(url)}])
        return bus, url

    def topic_to_queue(self, fifo=False, raw=True):
        """A new topic with a raw-delivery SQS subscription: (topic name, topic ARN, queue url)."""
        name = unique("topic") + (".fifo" if fifo else "")
        attributes = {"FifoTopic": "true"} if fifo else {}
        arn = self.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        _queue, url = self.aws.queue(fifo=fifo)
        self.sns.subscribe(
            TopicArn=arn,
            Protocol="sqs",
            Endpoint=self.queue_arn(url),
            Attributes={"RawMessageDelivery": "true" if raw else "false"},
        )
        return name, arn, url


def received_events(aws, url):
    """The EventBridge events a rule put on the queue, parsed."""
    return [json.loads(m["Body"]) for m in aws.receive_all(url)]


# --- EventBridge ----------------------------------------------------------------------------------------


def test_a_rule_delivers_the_cloudevent_as_the_events_detail(aws, buses):
    # Given a bus whose rule matches the relay's source and sends to an SQS queue
    bus, url = buses.bus_to_queue({"source": ["aitask-relay"], "detail-type": ["com.aliyun.ros.aitask.succeeded"]})
    obs = finished()
    # When a finished task is announced on the bus
    delivery = build_destination(f"eventbridge://{bus}").deliver(obs)
    # Then the consumer reads one EventBridge event: its detail is the CloudEvent an SQS destination sends
    (event,) = received_events(aws, url)
    assert delivery.outcome == "created" and delivery.location == f"eventbridge://{bus}#{event['id']}"
    assert event["source"] == "aitask-relay" and event["detail-type"] == "com.aliyun.ros.aitask.succeeded"
    cloudevent = event["detail"]
    assert cloudevent["specversion"] == "1.0" and cloudevent["id"] == "t-bus-1:SUCCESS"
    assert cloudevent["type"] == "com.aliyun.ros.aitask.succeeded" and cloudevent["subject"] == "t-bus-1"
    assert cloudevent["data"]["template"].encode() == obs.template.body
    assert cloudevent["data"]["template_sha256"] == obs.result.template_sha256


def test_a_rule_on_the_detail_type_routes_failures_apart(aws, buses):
    # Given a rule that takes only failed tasks
    bus, url = buses.bus_to_queue({"detail-type": ["com.aliyun.ros.aitask.failed"]})
    dest = build_destination(f"eventbridge://{bus}")
    # When a SUCCESS and a FAILURE are announced
    dest.deliver(finished())
    dest.deliver(finished("t-bus-f", status="FAILURE"))
    # Then only the failure reached the queue
    assert [e["detail"]["id"] for e in received_events(aws, url)] == ["t-bus-f:FAILURE"]


def test_a_bus_named_by_arn_with_its_own_source_and_detail_type(aws, buses):
    bus, url = buses.bus_to_queue({"source": ["my.relay"]})
    arn = buses.events.describe_event_bus(Name=bus)["Arn"]
    build_destination(f"eventbridge://{arn}?source=my.relay&detail_type=AI+task+finished").deliver(finished())
    (event,) = received_events(aws, url)
    assert (event["source"], event["detail-type"]) == ("my.relay", "AI task finished")


def test_the_ledger_makes_a_repeat_already_present_on_a_bus(aws, buses, ledger):
    # Given a bus (no deduplication of its own) behind the ledger
    bus, url = buses.bus_to_queue()
    dest = build_destination(f"eventbridge://{bus}", ledger=ledger)
    # When the same task is announced twice
    first, again = dest.deliver(finished()), dest.deliver(finished())
    # Then one event went out and the repeat is already_present, pointing at it
    (event,) = received_events(aws, url)
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == again.location == f"eventbridge://{bus}#{event['id']}"


def test_a_template_above_256_kib_goes_as_a_claim_check_on_a_bus(aws, buses):
    # Given S3 then a bus, and a template larger than an entry may be
    bucket, (bus, url) = aws.bucket(), buses.bus_to_queue()
    obs = finished(result=big_yaml(300_000))
    stored = build_destination(f"s3://{bucket}/t/").deliver(obs)
    # When announced
    delivery = build_destination(f"eventbridge://{bus}").deliver(obs, (stored,))
    # Then the event carries template_ref, which names the stored template
    (event,) = received_events(aws, url)
    data = event["detail"]["data"]
    assert delivery.outcome == "created" and "template" not in data
    assert data["template_ref"] == f"s3://{bucket}/t/t-bus-1/template.yaml"
    body = aws.s3.get_object(Bucket=bucket, Key="t/t-bus-1/template.yaml")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == data["template_sha256"] == obs.result.template_sha256


def test_a_template_above_256_kib_without_a_store_is_refused_for_good_and_sends_nothing(aws, buses):
    bus, url = buses.bus_to_queue()
    with pytest.raises(DestinationFailure) as caught:
        build_destination(f"eventbridge://{bus}").deliver(finished(result=big_yaml(300_000)))
    assert caught.value.retryable is False and "RELAY_DESTINATIONS" in caught.value.message
    assert received_events(aws, url) == []


def test_a_missing_bus_is_a_permanent_failure_found_before_any_put(aws, buses):
    # Given a bus that does not exist
    dest = build_destination("eventbridge://no-such-bus-for-relay")
    # When a task is announced / Then DescribeEventBus says so: a permanent failure naming the bus
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is False and caught.value.upstream_code == "ResourceNotFoundException"
    assert caught.value.message.startswith("eventbridge://no-such-bus-for-relay: ResourceNotFoundException")


def test_what_moto_answers_putevents_for_a_missing_bus(buses):
    # moto refuses the whole request, while AWS has been reported to answer 200 with FailedEntryCount 0 for a bus
    # that does not exist (https://github.com/aws/aws-cli/issues/9186): which is why the relay asks DescribeEventBus
    # first. This records what the stand-in does, so docs/destinations.md says what moto cannot prove.
    from botocore.exceptions import ClientError

    entry = {"EventBusName": "no-such-bus-for-relay", "Source": "s", "DetailType": "d", "Detail": "{}"}
    with pytest.raises(ClientError) as caught:
        buses.events.put_events(Entries=[entry])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_unreachable_bus_endpoint_is_a_retryable_failure(aws, monkeypatch):
    from aitask_relay.adapters import aws as clients

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    clients.reset()
    with pytest.raises(DestinationFailure) as caught:
        build_destination("eventbridge://any-bus").deliver(finished())
    assert caught.value.retryable is True and "EndpointConnectionError" in caught.value.message


# --- SNS ------------------------------------------------------------------------------------------------


def test_a_raw_sqs_subscription_receives_the_cloudevent_and_its_attributes(aws, buses):
    # Given a standard topic, named by name, with a raw-delivery SQS subscription
    name, arn, url = buses.topic_to_queue()
    obs = finished()
    # When a finished task is published
    delivery = build_destination(f"sns://{name}").deliver(obs)
    # Then the queue holds the CloudEvent itself, with the filterable attributes, and the name became the ARN
    (message,) = aws.receive_all(url)
    event = json.loads(message["Body"])
    assert delivery.outcome == "created" and delivery.location.startswith(f"{arn}#")
    assert event["id"] == "t-bus-1:SUCCESS" and event["type"] == "com.aliyun.ros.aitask.succeeded"
    assert event["data"]["template"].encode() == obs.template.body
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"task_id": "t-bus-1", "status": "SUCCESS", "template_format": "yaml"}


def test_a_subscription_without_raw_delivery_gets_the_cloudevent_as_the_notifications_message(aws, buses):
    _name, arn, url = buses.topic_to_queue(raw=False)
    build_destination(f"sns://{arn}").deliver(finished(status="FAILURE"))
    (message,) = aws.receive_all(url)
    notification = json.loads(message["Body"])
    assert notification["Type"] == "Notification" and notification["TopicArn"] == arn
    assert json.loads(notification["Message"])["type"] == "com.aliyun.ros.aitask.failed"
    assert notification["MessageAttributes"]["status"] == {"Type": "String", "Value": "FAILURE"}


def test_a_fifo_topic_groups_by_task_and_deduplicates_by_event_id(aws, buses):
    # Given a FIFO topic named by ARN with a FIFO queue subscribed
    _name, arn, url = buses.topic_to_queue(fifo=True)
    dest = build_destination(f"sns://{arn}")
    # When the same task is published twice (a retry without a ledger)
    dest.deliver(finished())
    dest.deliver(finished())
    # Then the queue holds one message, grouped by task id, deduplicated by event id
    (message,) = aws.receive_all(url)
    assert message["Attributes"]["MessageGroupId"] == "t-bus-1"
    assert message["Attributes"]["MessageDeduplicationId"] == "t-bus-1:SUCCESS"


def test_the_ledger_makes_a_repeat_already_present_on_a_topic(aws, buses, ledger):
    name, _arn, url = buses.topic_to_queue()
    dest = build_destination(f"sns://{name}", ledger=ledger)
    first, again = dest.deliver(finished()), dest.deliver(finished())
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == again.location and len(aws.receive_all(url)) == 1


def test_a_template_above_256_kib_goes_as_a_claim_check_on_a_topic(aws, buses):
    bucket, (name, _arn, url) = aws.bucket(), buses.topic_to_queue()
    obs = finished(result=big_yaml(300_000))
    stored = build_destination(f"s3://{bucket}/t/").deliver(obs)
    delivery = build_destination(f"sns://{name}").deliver(obs, (stored,))
    (message,) = aws.receive_all(url)
    data = json.loads(message["Body"])["data"]
    assert delivery.outcome == "created" and "template" not in data
    assert data["template_ref"] == f"s3://{bucket}/t/t-bus-1/template.yaml"


def test_a_message_the_topic_refuses_as_too_long_goes_again_as_a_claim_check(aws, buses):
    # Given a destination told the topic takes 1 MiB, while moto's topic takes 256 KiB (a topic set smaller
    # than max_message_bytes says), and a store that holds the template
    bucket, (name, _arn, url) = aws.bucket(), buses.topic_to_queue()
    obs = finished(result=big_yaml(300_000))
    stored = build_destination(f"s3://{bucket}/t/").deliver(obs)
    # When published: SNS refuses the inline message (InvalidParameter, "Message too long")
    delivery = build_destination(f"sns://{name}?max_message_bytes=1048576").deliver(obs, (stored,))
    # Then it went again as a claim check
    (message,) = aws.receive_all(url)
    assert delivery.outcome == "created" and "template_ref" in json.loads(message["Body"])["data"]


def test_a_missing_topic_is_a_permanent_failure(aws):
    for uri in ("sns://no-such-topic-for-relay", "sns://arn:aws:sns:us-east-1:123456789012:no-such-topic-for-relay"):
        with pytest.raises(DestinationFailure) as caught:
            build_destination(uri).deliver(finished())
        assert caught.value.retryable is False and caught.value.message.startswith(f"{uri}: NotFound")


def test_an_unreachable_topic_endpoint_is_a_retryable_failure(aws, monkeypatch):
    from aitask_relay.adapters import aws as clients

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    clients.reset()
    for uri in ("sns://any-topic", "sns://arn:aws:sns:us-east-1:123456789012:any-topic"):
        with pytest.raises(DestinationFailure) as caught:
            build_destination(uri).deliver(finished())
        assert caught.value.retryable is True and "EndpointConnectionError" in caught.value.message


# --- through the handler: no secret in any answer, error or log line ------------------------------------


def test_no_aws_secret_key_shows_in_answers_errors_or_logs(emulator, configure, watch_for_leaks, aws, buses):
    # Given a finished task, and a deployment whose bus and topic do not exist
    emulator.add_task({"TaskId": "t-bus-leak", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    configure(ROS_ENDPOINT=emulator.endpoint, RELAY_DESTINATIONS="eventbridge://no-such-bus,sns://no-such-topic")
    seen = watch_for_leaks((os.environ["AWS_SECRET_ACCESS_KEY"],))
    # When fetch_task delivers it
    answer = seen(load_handler("fetch_task")({"TaskId": "t-bus-leak"}, LambdaContext(function_name="fetch_task")))
    # Then both deliveries failed for good, naming their destination, and the secret key is nowhere
    deliveries = answer["results"][0]["deliveries"]
    assert [(d["destination"], d["outcome"], d["error"]["retryable"]) for d in deliveries] == [
        ("eventbridge://no-such-bus", "failed", False),
        ("sns://no-such-topic", "failed", False),
    ]
    seen.check()


# --- signed events (RELAY_SIGNING_SECRET) -----------------------------------------------------------------


SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def test_an_event_routed_from_a_bus_carries_a_signature_that_verifies(aws, buses):
    # Given a bus routed to a queue, and an EventBridge destination that signs
    from aitask_relay.adapters.destinations.signing import Signer, canonical

    bus, url = buses.bus_to_queue()
    build_destination(f"eventbridge://{bus}", signer=Signer(lambda: (SECRET,))).deliver(finished())
    # When the consumer reads the event EventBridge delivered (it parsed the detail and wrote it out again)
    (event,) = received_events(aws, url)
    cloudevent = event["detail"]
    headers = {
        "webhook-id": cloudevent["id"],
        "webhook-timestamp": cloudevent["webhooktimestamp"],
        "webhook-signature": cloudevent["webhooksignature"],
    }
    # Then the CloudEvent's canonical form verifies with standardwebhooks, as docs/destinations.md shows
    assert Webhook(SECRET).verify(canonical(cloudevent), headers)["id"] == "t-bus-1:SUCCESS"
    # And a changed template, or another secret, does not verify
    changed = dict(cloudevent, data=dict(cloudevent["data"], template="Resources: {}\n"))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(canonical(changed), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(canonical(cloudevent), headers)


def test_a_raw_sns_subscription_passes_the_signature_attributes_on(aws, buses):
    # Given a topic with a raw-delivery SQS subscription, and an SNS destination that signs
    from aitask_relay.adapters.destinations.signing import Signer

    name, _arn, url = buses.topic_to_queue()
    build_destination(f"sns://{name}", signer=Signer(lambda: (SECRET,))).deliver(finished())
    # When the consumer reads the message and its attributes
    (message,) = aws.receive_all(url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    body = message["Body"].encode()
    # Then the exact body verifies, beside the filterable attributes (6 here, at most 8: SNS passes 10 on raw)
    assert Webhook(SECRET).verify(body, headers)["id"] == "t-bus-1:SUCCESS"
    assert headers["task_id"] == "t-bus-1" and len(headers) == 6
    # And a changed body does not
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"ECS::VPC", b"ECS::VPX"), headers)
