"""The Alibaba Cloud EventBridge destination (``acs-eventbridge://<bus>?endpoint=...``) against the devkit's stand-in
over real HTTP, through the official SDK (alibabacloud-eventbridge20200401): the stand-in checks every request's
ACS3-HMAC-SHA256 signature and STS token with its own implementation, the bus, the event id and the 64 KB limit, and
keeps the events as EventBridge delivers them. The claim check's store is OSS on moto's server."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from test_destinations import big_yaml as yaml_of  # tests/integration, this file's folder
from test_destinations import finished as finished_task

from aitask_relay.adapters.destinations import build_destination, keep_announcement_records
from aitask_relay.core.errors import DestinationFailure
from relay_devkit.acs_eventbridge import AcsEventBridgeStandIn
from relay_devkit.servers import closed_port, unique

TOKEN = "sts-token-NEVER-LOGGED"


def finished(task_id="t-eb-1", **fields):
    return finished_task(task_id, **fields)


@pytest.fixture
def eb():
    """The stand-in, accepting the test AccessKey pair (no STS token)."""
    standin = AcsEventBridgeStandIn(
        {os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]: (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"], None)}
    )
    yield standin.start()
    standin.stop()


def bus_of(eb):
    name = unique("relay-bus")
    eb.create_bus(name)
    return name


def oss_store(aws):
    bucket = aws.bucket()
    return bucket, build_destination(f"oss://{bucket}/t/?region=cn-hangzhou&endpoint={aws.endpoint}")


def test_a_task_is_published_once_as_a_cloudevent_with_a_dash_id_and_the_template_inline(eb):
    # Given an acs-eventbridge destination on a bus of the stand-in
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus))
    obs = finished()
    # When the finished task is delivered
    delivery = dest.deliver(obs)
    # Then the bus received one CloudEvent: the relay's attributes, the id as EventBridge takes it ("-" for ":"),
    # the extension attribute, and EventBridge's own attributes added on delivery
    (event,) = eb.events(bus)
    assert (delivery.outcome, delivery.location) == ("created", f"acs-eventbridge://{bus}#t-eb-1-SUCCESS")
    assert (event["id"], event["type"], event["subject"], event["source"]) == (
        "t-eb-1-SUCCESS",
        "com.aliyun.ros.aitask.succeeded",
        "t-eb-1",
        "aitask-relay",
    )
    assert event["data"]["template"] == obs.template.body.decode() and event["aliyuneventbusname"] == bus
    assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
    # And the request was the SDK's RPC PutEvents, signed ACS3-HMAC-SHA256
    (request,) = eb.requests
    assert request["headers"]["x-acs-action"] == "PutEvents" and request["headers"]["x-acs-version"] == "2020-04-01"
    assert request["headers"]["authorization"].startswith("ACS3-HMAC-SHA256 ")
    assert request["form"]["EventBusName"] == bus


def test_with_a_ledger_a_repeat_is_already_present_and_not_sent_again(eb, ledger):
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus), ledger=ledger)
    # When the same task is delivered twice
    first, again = dest.deliver(finished()), dest.deliver(finished())
    # Then one event was published and the repeat is already_present, pointing at it
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == again.location and len(eb.events(bus)) == 1 and len(eb.requests) == 1


def test_without_a_ledger_the_store_marker_records_the_announcement(eb, aws):
    bus = bus_of(eb)
    _bucket, store = oss_store(aws)
    dest = build_destination(eb.destination(bus))
    assert keep_announcement_records([store, dest]) is False
    obs = finished()
    first = dest.deliver(obs, (store.deliver(obs),))
    again = dest.deliver(obs, (store.deliver(obs),))
    assert (first.outcome, again.outcome) == ("created", "already_present") and len(eb.events(bus)) == 1


def test_an_event_above_64_kb_goes_as_a_claim_check_and_one_below_inline(eb, aws):
    # Given an OSS store and a template whose event is above 64 KB
    bus = bus_of(eb)
    bucket, store = oss_store(aws)
    dest = build_destination(eb.destination(bus))
    big = finished(result=yaml_of(70_000))
    # When stored, then published
    dest.deliver(big, (store.deliver(big),))
    # Then the event names the stored template, which is the template
    event = eb.events(bus)[0]
    assert "template" not in event["data"] and event["data"]["template_ref"] == f"oss://{bucket}/t/t-eb-1/template.yaml"
    body = aws.s3.get_object(Bucket=bucket, Key="t/t-eb-1/template.yaml")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == event["data"]["template_sha256"]
    # And a template just under the limit goes inline, the event as sent within 64 KB
    small = finished("t-eb-2", result=yaml_of(60_000))
    dest.deliver(small, (store.deliver(small),))
    assert eb.events(bus)[1]["data"]["template"] == small.template.body.decode()
    assert len(eb.requests[-1]["form"]["EventList"].encode()) <= 64 * 1024 + 2  # the list's brackets


def test_a_task_id_eventbridge_would_refuse_gets_a_hashed_wire_id(eb):
    bus = bus_of(eb)
    build_destination(eb.destination(bus)).deliver(finished("t_eb.3"))
    (event,) = eb.events(bus)
    assert event["id"].startswith("h") and event["id"].endswith("-SUCCESS") and event["subject"] == "t_eb.3"


def test_a_missing_bus_is_a_permanent_failure_that_names_the_destination(eb):
    uri = eb.destination("no-such-bus")
    with pytest.raises(DestinationFailure) as caught:
        build_destination(uri).deliver(finished())
    assert caught.value.retryable is False and caught.value.upstream_code == "EventBusNotExist"
    assert uri in caught.value.message


def test_the_bus_down_is_a_retryable_failure():
    dest = build_destination(f"acs-eventbridge://relay-bus?endpoint=http://127.0.0.1:{closed_port()}")
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is True and caught.value.message.startswith("acs-eventbridge://relay-bus?endpoint=")


def test_a_reset_connection_is_retryable_and_the_retry_publishes(eb):
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus))
    eb.reset(1)
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is True and eb.events(bus) == []
    assert dest.deliver(finished()).outcome == "created" and len(eb.events(bus)) == 1


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("InternalError", 500, True),
        ("ServiceUnavailable", 503, True),
        ("TooManyRequests", 429, True),
        ("Throttling.User", 400, True),
        ("AccessDenied", 403, False),
        ("InvalidAccessKeyId", 403, False),
        ("EventBusNotExist", 404, False),
    ],
)
def test_error_answers_are_classified_by_the_one_table(eb, code, status, retryable):
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus))
    eb.fail(code, status)
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert (caught.value.upstream_code, caught.value.retryable) == (code, retryable)
    assert eb.events(bus) == [] and eb.faults_left() == 0
    assert dest.deliver(finished()).outcome == "created"  # once the service answers again


@pytest.mark.parametrize(("code", "retryable"), [("InternalError", True), ("TooManyRequests", True),
                                                 ("InvalidArgument", False)])  # fmt: skip
def test_a_failed_entry_is_a_delivery_failure_through_the_table(eb, code, retryable):
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus))
    eb.fail_entries(code, "entry refused")
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert (caught.value.upstream_code, caught.value.retryable) == (code, retryable)
    assert "entry refused" in caught.value.message and eb.events(bus) == []


def test_neither_the_accesskey_secret_nor_the_sts_token_is_in_errors_or_logs(monkeypatch, watch_for_leaks):
    from alibabacloud_credentials.utils import auth_util

    secret = os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    monkeypatch.setattr(auth_util, "environment_security_token", TOKEN)
    key_id = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    standin = AcsEventBridgeStandIn({key_id: (secret, "another-token")}).start()
    try:
        seen = watch_for_leaks([secret, TOKEN])
        bus = bus_of(standin)
        dest = build_destination(standin.destination(bus))
        # When refused for the token (403 SecurityTokenInvalid), then accepted with the token it expects
        with pytest.raises(DestinationFailure) as caught:
            dest.deliver(finished())
        seen(caught.value)
        assert caught.value.upstream_code == "SecurityTokenInvalid" and caught.value.retryable is False
        standin.keys[key_id] = (secret, TOKEN)
        seen(dest.deliver(finished()))
        # Then the token went signed as x-acs-security-token, and neither it nor the secret is in any error or log
        assert standin.requests[-1]["headers"]["x-acs-security-token"] == TOKEN
        seen.check()
    finally:
        standin.stop()


def test_a_signed_event_verifies_over_the_event_as_received_and_not_once_changed(eb, aws):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from aitask_relay.adapters.destinations.signing import Signer, canonical

    # Given a signing secret, an OSS store and a bus, and a task inline and one as a claim check
    secret = "whsec_" + base64.b64encode(b"e" * 32).decode()
    signer = Signer(lambda: (secret,))
    _bucket, store = oss_store(aws)
    bus = bus_of(eb)
    dest = build_destination(eb.destination(bus), signer=signer)
    for obs in (finished(result=yaml_of(1_000)), finished("t-eb-2", result=yaml_of(70_000))):
        dest.deliver(obs, (store.deliver(obs),))
    # Then each event, as the bus delivers it (EventBridge's own attributes added), verifies by its wire id
    for event, task in zip(eb.events(bus), ("t-eb-1", "t-eb-2"), strict=True):
        headers = {
            "webhook-id": event["id"],
            "webhook-timestamp": event["webhooktimestamp"],
            "webhook-signature": event["webhooksignature"],
        }
        assert Webhook(secret).verify(canonical(event), headers)["id"] == f"{task}-SUCCESS"
        # And a changed body fails
        event["data"]["template_sha256"] = "0" * 64
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(canonical(event), headers)
    assert "template_ref" in eb.events(bus)[1]["data"]


def test_a_bus_name_the_service_refuses_is_refused_at_cold_start():
    from aitask_relay.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        build_destination(f"acs-eventbridge://{unique('bad_bus')}?endpoint=http://127.0.0.1:1")
    assert "is not an event bus name" in caught.value.message
