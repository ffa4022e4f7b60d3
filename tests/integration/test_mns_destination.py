"""The MNS destination (``mns://<queue>?endpoint=...``) against the devkit's MNS stand-in over real HTTP, through
the official SDK: the stand-in checks every request's signature (HMAC-SHA1 over the AccessKey secret) and the
STS token, the queue's MaximumMessageSize on the base64 body as sent, and answers GetQueueAttributes. The claim
check's store is OSS on moto's server (the OSS SDK against moto's S3 API, as the OSS tests do)."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from test_destinations import big_yaml as yaml_of  # tests/integration, this file's folder
from test_destinations import finished as finished_task

from aitask_relay.adapters.destinations import build_destination, keep_announcement_records
from aitask_relay.adapters.ledger import build_ledger
from aitask_relay.core.errors import DestinationFailure
from relay_devkit.mns import MnsStandIn
from relay_devkit.servers import closed_port, unique

TOKEN = "sts-token-NEVER-LOGGED"


def finished(task_id="t-mns-1", **fields):
    """A finished task, as the other destinations' tests make it (test_destinations.finished)."""
    return finished_task(task_id, **fields)


@pytest.fixture
def mns():
    """The stand-in, accepting the test AccessKey pair (no STS token)."""
    standin = MnsStandIn(
        {os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]: (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"], None)}
    )
    yield standin.start()
    standin.stop()


def queue_of(mns, **attributes):
    name = unique("out")
    mns.create_queue(name, **attributes)
    return name


def events(mns, queue):
    """The CloudEvents the queue holds, decoded from base64 as a consumer (or the event stream) does."""
    return [json.loads(m.text()) for m in mns.pending(queue)]


def attribute_reads(mns, queue):
    return [r for r in mns.requests if r["method"] == "GET" and r["path"] == f"/queues/{queue}"]


def oss_store(aws):
    bucket = aws.bucket()
    return bucket, build_destination(f"oss://{bucket}/t/?region=cn-hangzhou&endpoint={aws.endpoint}")


def test_a_task_is_announced_once_as_a_base64_cloudevent_with_the_template_inline(mns):
    # Given an MNS destination on a queue of the stand-in
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue))
    obs = finished()
    # When the finished task is delivered
    delivery = dest.deliver(obs)
    # Then one message is stored, base64 on the wire, whose text is the CloudEvent with the template inline
    (stored,) = mns.pending(queue)
    event = json.loads(base64.b64decode(stored.body, validate=True))
    assert (delivery.outcome, delivery.location) == ("created", f"{mns.endpoint}/queues/{queue}#{stored.message_id}")
    assert delivery.destination == mns.destination(queue)
    assert (event["id"], event["type"], event["subject"]) == (
        "t-mns-1:SUCCESS",
        "com.aliyun.ros.aitask.succeeded",
        "t-mns-1",
    )
    assert event["data"]["template"] == obs.template.body.decode() and stored.delay_seconds == 0
    # And the queue's MaximumMessageSize was asked once, before the first message, not again for the second
    dest.deliver(finished("t-mns-2", status="FAILURE"))
    assert len(attribute_reads(mns, queue)) == 1 and len(mns.pending(queue)) == 2


@pytest.fixture(params=["redis", "dynamodb"])
def ledger(request, aws):
    if request.param == "redis":
        return build_ledger(request.getfixturevalue("redis_url"), expires_after_seconds=600)
    return build_ledger(f"dynamodb://{aws.ledger_table()}", expires_after_seconds=600)


def test_with_a_ledger_a_repeat_is_already_present_and_not_sent_again(mns, ledger):
    # Given an MNS queue (no deduplication of its own) behind the ledger
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue), ledger=ledger)
    # When the same task is delivered twice
    first, again = dest.deliver(finished()), dest.deliver(finished())
    # Then one message was sent and the repeat is already_present, pointing at it
    (stored,) = mns.pending(queue)
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert first.location == again.location == f"{mns.endpoint}/queues/{queue}#{stored.message_id}"


def test_without_a_ledger_the_store_marker_records_the_announcement(mns, aws):
    # Given an OSS store and an MNS queue, the store keeping the record of announcements (no ledger)
    queue = queue_of(mns)
    bucket, store = oss_store(aws)
    dest = build_destination(mns.destination(queue))
    assert keep_announcement_records([store, dest]) is False
    obs = finished()
    # When the task is delivered (store, then queue) twice
    first = dest.deliver(obs, (store.deliver(obs),))
    again = dest.deliver(obs, (store.deliver(obs),))
    # Then the queue got one message; the repeat found the marker in the bucket
    assert (first.outcome, again.outcome) == ("created", "already_present") and len(mns.pending(queue)) == 1
    (marker,) = aws.s3.list_objects_v2(Bucket=bucket, Prefix="t/t-mns-1/announced/")["Contents"]
    assert (
        marker["Key"].startswith("t/t-mns-1/announced/SUCCESS.") and again.location == f"oss://{bucket}/{marker['Key']}"
    )


def test_a_message_whose_base64_exceeds_the_limit_goes_as_a_claim_check_to_oss(mns, aws):
    # Given an OSS store and a 64 KB queue, and a template whose event is under 64 KB as JSON but over it in base64
    queue = queue_of(mns)
    bucket, store = oss_store(aws)
    dest = build_destination(mns.destination(queue))
    obs = finished(result=yaml_of(52_000))
    raw = len(json.dumps(obs.result.to_dict())) + len(obs.template.body)
    assert raw < 64 * 1024 < raw * 4 // 3
    # When stored, then announced
    delivery = dest.deliver(obs, (store.deliver(obs),))
    # Then the message names the stored template instead of carrying it, and that object is the template
    (stored,) = mns.pending(queue)
    event = json.loads(stored.text())
    assert delivery.outcome == "created" and "template" not in event["data"]
    assert event["data"]["template_ref"] == f"oss://{bucket}/t/t-mns-1/template.yaml"
    body = aws.s3.get_object(Bucket=bucket, Key="t/t-mns-1/template.yaml")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == event["data"]["template_sha256"] == obs.result.template_sha256
    # And a template just under 3/4 of the limit still goes inline
    small = finished("t-mns-2", result=yaml_of(46_000))
    dest.deliver(small, (store.deliver(small),))
    assert json.loads(mns.pending(queue)[1].text())["data"]["template"] == small.template.body.decode()


def test_a_queue_set_below_64_kb_is_read_and_respected(mns, aws):
    # Given a queue whose MaximumMessageSize is 4,096 bytes (GetQueueAttributes says so) and an OSS store
    queue = queue_of(mns, maximum_message_size=4096)
    _bucket, store = oss_store(aws)
    dest = build_destination(mns.destination(queue))
    obs = finished(result=yaml_of(3_500))  # under 4 KB as text, over it with the envelope and base64
    # When announced
    dest.deliver(obs, (store.deliver(obs),))
    # Then it went as a claim check at once: MNS refused nothing (one SendMessage, answered 201)
    (stored,) = mns.pending(queue)
    assert "template_ref" in json.loads(stored.text())["data"] and len(stored.body) <= 4096
    assert [r["method"] for r in mns.requests if r["path"].startswith(f"/queues/{queue}")] == ["GET", "POST"]


def test_a_queue_made_smaller_later_refuses_the_inline_message_and_the_claim_check_follows(mns, aws):
    # Given a destination that read its queue's size (64 KB), then the queue set to 2,048 bytes
    queue = queue_of(mns)
    _bucket, store = oss_store(aws)
    dest = build_destination(mns.destination(queue))
    dest.deliver(finished("t-mns-0"))
    mns.sizes[queue] = 2048
    obs = finished(result=yaml_of(3_000))
    # When a task whose inline message fits 64 KB but not 2 KB is announced
    delivery = dest.deliver(obs, (store.deliver(obs),))
    # Then MNS refused the inline form (InvalidArgument), the size was asked again, and the claim check went
    assert delivery.outcome == "created"
    last = json.loads(mns.pending(queue)[-1].text())
    assert "template_ref" in last["data"] and len(mns.pending(queue)) == 2
    assert len(attribute_reads(mns, queue)) == 2


def test_an_oversize_message_without_a_store_is_a_permanent_failure_and_sends_nothing(mns):
    queue = queue_of(mns)
    with pytest.raises(DestinationFailure) as caught:
        build_destination(mns.destination(queue)).deliver(finished(result=yaml_of(60_000)))
    assert caught.value.retryable is False and "RELAY_DESTINATIONS" in caught.value.message
    assert mns.pending(queue) == []


def test_an_unreachable_endpoint_is_a_retryable_failure():
    # Given an endpoint on a closed port
    dest = build_destination(f"mns://out?endpoint=http://127.0.0.1:{closed_port()}")
    # When delivered, Then the failure is retryable and names the destination
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    assert caught.value.retryable is True and caught.value.message.startswith("mns://out?endpoint=")


def test_a_missing_queue_is_a_permanent_failure_that_names_the_destination(mns):
    uri = mns.destination("no-such-queue")
    with pytest.raises(DestinationFailure) as caught:
        build_destination(uri).deliver(finished())
    assert caught.value.retryable is False and caught.value.upstream_code == "QueueNotExist"
    assert uri in caught.value.message


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("InternalError", 500, True),
        ("QpsLimitExceeded", 400, True),
        ("TimeExpired", 408, True),
        ("AccessDenied", 403, False),
        ("SignatureDoesNotMatch", 403, False),
    ],
)
def test_the_stand_ins_error_answers_are_classified_by_the_one_table(mns, code, status, retryable):
    # Given a destination that has read its queue's size, and MNS answering the next SendMessage with an error
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue))
    dest.deliver(finished("t-mns-0"))
    mns.fail(code, status)
    # When delivered
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    # Then the failure has MNS's code and is retryable or not as the table says; nothing more was stored
    assert (caught.value.upstream_code, caught.value.retryable) == (code, retryable)
    assert len(mns.pending(queue)) == 1
    # And once MNS answers again, the retry goes through
    assert dest.deliver(finished()).outcome == "created" and len(mns.pending(queue)) == 2


def test_a_lost_answer_is_sent_again_by_the_sdk_itself_and_the_queue_holds_the_event_twice(mns, caplog):
    # Given MNS storing the next message but the connection closing before its answer
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue))
    dest.deliver(finished("t-mns-0"))
    mns.drop_answers(1)
    # When delivered
    delivery = dest.deliver(finished())
    # Then the SDK sent the request again on a new connection by itself (mns.mns_http.MNSHttp.send_request reopens
    # and resends on BadStatusLine, for a keep-alive connection the server closed) and that one was answered: the
    # delivery succeeded, the queue holds the event twice (same id), and nothing told the relay
    assert delivery.outcome == "created" and len(mns.dropped) == 1
    assert [e["id"] for e in events(mns, queue)] == ["t-mns-0:SUCCESS", "t-mns-1:SUCCESS", "t-mns-1:SUCCESS"]
    assert "unanswered" not in caplog.text


def test_two_lost_answers_fail_retryably_are_logged_and_the_retry_sends_the_event_again(mns, caplog):
    # Given MNS storing the next two messages but closing each connection before the answer
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue))
    dest.deliver(finished("t-mns-0"))
    mns.drop_answers(2)
    # When delivered (the SDK's own second request is dropped too), then retried
    with pytest.raises(DestinationFailure) as caught:
        dest.deliver(finished())
    retried = dest.deliver(finished())
    # Then the first delivery failed retryably and was logged as possibly sent; the retry sent the event again
    assert caught.value.retryable is True and caught.value.upstream_code == "NetWorkException"
    assert retried.outcome == "created" and len(mns.dropped) == 2
    assert "MNS send of event t-mns-1:SUCCESS unanswered (NetWorkException)" in caplog.text
    assert [e["id"] for e in events(mns, queue)] == ["t-mns-0:SUCCESS"] + ["t-mns-1:SUCCESS"] * 3


def test_an_unreadable_queue_size_assumes_64_kb_and_warns_once(mns, caplog):
    # Given GetQueueAttributes denied (a role with mns:SendMessage only)
    queue = queue_of(mns)
    dest = build_destination(mns.destination(queue))
    mns.fail("AccessDenied", 403)
    # When two tasks are delivered
    first, second = dest.deliver(finished("t-mns-1")), dest.deliver(finished("t-mns-2"))
    # Then both were sent; the size was asked once and the warning says what is assumed
    assert (first.outcome, second.outcome) == ("created", "created") and len(mns.pending(queue)) == 2
    assert len(attribute_reads(mns, queue)) == 1
    warnings = [r.getMessage() for r in caplog.records if "MaximumMessageSize" in r.getMessage()]
    assert len(warnings) == 1 and "AccessDenied" in warnings[0] and "65536" in warnings[0]


def test_neither_the_accesskey_secret_nor_the_sts_token_is_in_errors_or_logs(monkeypatch, watch_for_leaks):
    from alibabacloud_credentials.utils import auth_util

    secret = os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    # Given the role's STS token in the chain, and a stand-in that expects another token (403), then the right one
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    monkeypatch.setattr(auth_util, "environment_security_token", TOKEN)
    key_id = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    standin = MnsStandIn({key_id: (secret, "another-token")}).start()
    try:
        seen = watch_for_leaks([secret, TOKEN])
        queue = queue_of(standin)
        dest = build_destination(standin.destination(queue))
        # When delivered and refused (InvalidAccessKeyId), and delivered again with the token MNS expects
        with pytest.raises(DestinationFailure) as caught:
            dest.deliver(finished())
        seen(caught.value)
        assert caught.value.upstream_code == "InvalidAccessKeyId" and caught.value.retryable is False
        standin.keys[key_id] = (secret, TOKEN)
        seen(dest.deliver(finished()))
        # Then the token went as MNS's security-token header, and neither it nor the secret is in any error,
        # answer or log line
        assert standin.requests[-1]["headers"]["security-token"] == TOKEN
        seen.check()
    finally:
        standin.stop()


def test_a_signed_event_carries_its_signature_inside_and_verifies_after_the_queue(mns, aws):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from aitask_relay.adapters.destinations.signing import Signer, canonical

    # Given a signing secret, an OSS store and two MNS queues, one 64 KB, one 2 KB (a claim check)
    secret = "whsec_" + base64.b64encode(b"m" * 32).decode()
    signer = Signer(lambda: (secret,))
    _bucket, store = oss_store(aws)
    big, small = queue_of(mns), queue_of(mns, maximum_message_size=2048)
    obs = finished(result=yaml_of(1_000))
    stored = (store.deliver(obs),)
    # When delivered to both
    for queue in (big, small):
        build_destination(mns.destination(queue), signer=signer).deliver(obs, stored)
    # Then each event holds its signature as CloudEvents extension attributes, which a consumer verifies from the
    # event alone (MNS carries nothing beside the body), within the queue's size once base64-encoded
    for queue in (big, small):
        (message,) = mns.pending(queue)
        event = json.loads(message.text())
        headers = {
            "webhook-id": event["id"],
            "webhook-timestamp": event["webhooktimestamp"],
            "webhook-signature": event["webhooksignature"],
        }
        assert Webhook(secret).verify(canonical(event), headers)["id"] == "t-mns-1:SUCCESS"
        assert len(message.body) <= (65536 if queue == big else 2048)
        event["data"]["template_sha256"] = "0" * 64
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(canonical(event), headers)
    assert "template" in json.loads(mns.pending(big)[0].text())["data"]
    assert "template_ref" in json.loads(mns.pending(small)[0].text())["data"]
