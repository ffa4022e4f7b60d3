"""Signed events (RELAY_SIGNING_SECRET): what a consumer receives on each real transport verifies with the
``standardwebhooks`` package, exactly as README shows, and fails for a changed body or another secret."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from aitask_relay import runtime
from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.destinations.signing import Signer, canonical
from aitask_relay.core.errors import ConfigurationError
from aitask_relay.core.normalize import normalize

T = "2026-11-29T00:00:00.000Z"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def finished(task_id="t-signed", result=YAML):
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskType": "GenerateTemplate", "RequestId": "R-1"}
    body["TaskOutput"] = {"Result": result}
    return normalize(body, task_id=task_id, observed_at=T)


def signer(*secrets):
    return Signer(lambda: secrets)


def verify_old(secret, body, headers):
    """README's verification for a message that may have waited longer than Webhook.verify's five minutes."""
    ts = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], ts, body.decode()).split(",")[1]
    return expected in [s.split(",")[1] for s in headers["webhook-signature"].split()]


def test_sqs_message_attributes_carry_a_signature_over_the_exact_body(aws):
    # Given an SQS destination built with a signer
    name, url = aws.queue()
    build_destination(f"sqs://{name}", signer=signer(SECRET)).deliver(finished())
    # When a consumer reads the message and its attributes
    (message,) = aws.receive_all(url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    body = message["Body"].encode()
    # Then the filterable attributes are there as before, and the signature verifies with standardwebhooks
    assert headers["task_id"] == "t-signed" and headers["webhook-id"] == "t-signed:SUCCESS"
    assert Webhook(SECRET).verify(body, headers)["id"] == "t-signed:SUCCESS"
    assert verify_old(SECRET, body, headers)
    # And a changed body, or another secret, does not verify
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"Resources", b"Resourcez"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEXT_SECRET).verify(body, headers)


def test_amqp_headers_carry_the_signature(rabbitmq):
    # Given an AMQP destination built with a signer
    queue = rabbitmq.queue()
    dest = build_destination(f"{rabbitmq.uri}?routing_key={queue}", signer=signer(SECRET))
    dest.deliver(finished())
    dest.close()
    # When a consumer reads the message
    ((properties, body),) = rabbitmq.get_all(queue)
    # Then its headers verify the exact body, and a changed body does not
    assert properties.headers["webhook-id"] == properties.message_id == "t-signed:SUCCESS"
    assert Webhook(SECRET).verify(body, properties.headers)["subject"] == "t-signed"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", properties.headers)


def test_while_rotating_each_secret_verifies_alone(aws):
    # Given two secrets (the old one and its successor)
    name, url = aws.queue()
    build_destination(f"sqs://{name}", signer=signer(SECRET, NEXT_SECRET)).deliver(finished())
    (message,) = aws.receive_all(url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    # Then the header holds two v1 signatures and a consumer holding either secret verifies the message
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    assert Webhook(SECRET).verify(message["Body"], headers)
    assert Webhook(NEXT_SECRET).verify(message["Body"], headers)


def test_a_claim_check_is_signed_and_names_the_template_sha256(aws, tmp_path):
    # Given a queue that takes 2 KiB and a template of 8 KiB stored in a file store first
    name, url = aws.queue()
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": "2048"})
    obs = finished(result=YAML + "# padding\n" * 800)
    stored = build_destination(tmp_path.as_uri()).deliver(obs)
    # When announced with a signer
    delivery = build_destination(f"sqs://{name}", signer=signer(SECRET)).deliver(obs, [stored])
    # Then the message is a claim check within the queue's limit (the signature's attributes counted), and
    # its signature covers the template through its sha256
    (message,) = aws.receive_all(url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    event = Webhook(SECRET).verify(message["Body"], headers)
    assert delivery.outcome == "created" and "template" not in event["data"]
    assert event["data"]["template_ref"] == stored.location
    assert event["data"]["template_sha256"] == obs.result.template_sha256
    size = len(message["Body"].encode()) + sum(len(k) + len("String") + len(v.encode()) for k, v in headers.items())
    assert size <= 2048


def test_an_embedded_signature_survives_a_bus_that_writes_the_event_out_again():
    # Given a message built for a transport without attributes (MNS, the event buses)
    from aitask_relay.adapters.destinations.message import build_message
    from aitask_relay.core.model import Observation

    obs = finished()
    message = build_message(Observation(obs.result, obs.template), (), limit=65536, where="bus", signer=signer(SECRET),
                            embed=True)  # fmt: skip
    # When a bus parses it and writes it out with other spacing and key order
    received = json.dumps(dict(reversed(list(json.loads(message.body).items()))), indent=2)
    # Then README's recipe verifies it, and no header travels beside it
    event = json.loads(received)
    headers = {"webhook-id": event["id"], "webhook-timestamp": event["webhooktimestamp"],
               "webhook-signature": event["webhooksignature"]}  # fmt: skip
    assert message.signature == {}
    assert Webhook(SECRET).verify(canonical(event), headers)["id"] == "t-signed:SUCCESS"
    # And a changed field does not verify
    event["data"]["template_sha256"] = "0" * 64
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(canonical(event), headers)


def test_the_handler_signs_with_the_secret_its_variable_names(emulator, fetch_task, configure, aws):
    # Given RELAY_SIGNING_SECRET naming a Secrets Manager secret that holds two secrets, and an SQS destination
    emulator.add_task({"TaskId": "t-signed", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    name, url = aws.queue()
    aws.secrets.create_secret(Name="relay/signing", SecretString=f"{SECRET} {NEXT_SECRET}")
    configure(RELAY_DESTINATIONS=f"sqs://{name}", RELAY_SIGNING_SECRET="secretsmanager:relay/signing")
    # When the real handler fetches the task
    (result,) = fetch_task({"TaskId": "t-signed"})["results"]
    # Then the message verifies with either secret, and nothing of the secret is in the result
    assert result["deliveries"][0]["outcome"] == "created"
    (message,) = aws.receive_all(url)
    headers = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert Webhook(NEXT_SECRET).verify(message["Body"], headers)["data"]["task_id"] == "t-signed"
    assert SECRET[6:] not in json.dumps(result) and NEXT_SECRET[6:] not in json.dumps(result)


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        (SECRET, {}, "by reference"),
        ("env:RELAY_TEST_SIGNING", {}, "is not set or is empty"),
        ("env:RELAY_TEST_SIGNING", {"RELAY_TEST_SIGNING": "whsec_c2hvcnQ="}, "is 5 bytes"),
        ("env:RELAY_TEST_SIGNING", {"RELAY_TEST_SIGNING": "c2VjcmV0" * 6}, "does not start with whsec_"),
        ("env:RELAY_TEST_SIGNING", {"RELAY_TEST_SIGNING": "whsec_!!notbase64!!"}, "is not whsec_<base64>"),
        ("vault:x", {}, "by reference"),
    ],
)
def test_a_bad_signing_secret_fails_naming_the_variable_never_the_value(
    relay_env, value, environ, expected, local_ros
):
    # Given a bad RELAY_SIGNING_SECRET (or a reference to a bad or missing value)
    relay_env.setenv("RELAY_SIGNING_SECRET", value)
    for key, val in environ.items():
        relay_env.setenv(key, val)
    runtime.reset()
    # When the destinations are built (the first invocation)
    with pytest.raises(ConfigurationError) as caught:
        runtime.destinations()
    # Then the error names the variable and the problem, and shows no secret
    text = str(caught.value)
    assert "RELAY_SIGNING_SECRET" in text and expected in text
    for secret in (SECRET, *environ.values()):
        assert secret not in text and secret[6:] not in text
