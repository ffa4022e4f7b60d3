"""The webhook destination against a real HTTPS server on loopback (relay_devkit.webhook.WebhookReceiver: a
certificate made for this run by a throwaway CA, which the relay trusts through SSL_CERT_FILE; verification is never
turned off). Each test scripts the receiver's answers and reads what it received: headers, body, connections."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from urllib.parse import quote

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from aitask_relay import runtime
from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.ledger import build_ledger
from aitask_relay.core.errors import ConfigurationError, DestinationFailure
from aitask_relay.core.normalize import normalize
from relay_devkit.servers import closed_port, unique
from relay_devkit.webhook import WebhookReceiver

T = "2026-11-29T00:00:00.000Z"
YAML = "Resources:\n  Vpc:\n    Type: ALIYUN::ECS::VPC\n"
# Secrets whose base64 holds '+' and '/' (written %2B, %2F in a URI); one marked so that a leak is easy to find.
SECRET = "whsec_" + base64.b64encode(bytes(range(200, 232))).decode()
NEXT = "whsec_" + base64.b64encode(b"NEVER-LOGGED-" + uuid.uuid4().bytes + b"!!!").decode()


def q(secret):
    return quote(secret, safe="")


def finished(task_id="t-hook-1", result=YAML, status="SUCCESS"):
    body = {"TaskId": task_id, "Status": status, "TaskType": "GenerateTemplate", "RequestId": "R-1"}
    if status == "SUCCESS":
        body["TaskOutput"] = {"Result": result}
    return normalize(body, task_id=task_id, observed_at=T)


@pytest.fixture
def receiver(monkeypatch):
    """The HTTPS receiver, trusted by the relay through SSL_CERT_FILE (OpenSSL's variable) for this test only."""
    server = WebhookReceiver().start()
    monkeypatch.setenv("SSL_CERT_FILE", server.ca_file)
    yield server
    server.stop()


def hook(receiver, *, host="127.0.0.1", secrets=(SECRET,), **params):
    """The receiver's webhook URI (127.0.0.1 needs allow_private=true, which the caller gives)."""
    given = [f"{key}={value}" for key, value in params.items()]
    query = "&".join([*given, f"secret={'+'.join(map(q, secrets))}"] if secrets else given)
    return f"{receiver.url(host)}?{query}"


def resolver(address="127.0.0.1", *, watch=None):
    """A hosts-like resolver hook: every name answers ``address``; with ``watch`` (the receiver), each call records
    how many connections the receiver had accepted when the name was resolved."""
    calls = []

    def resolve(host, port):
        calls.append((host, port, watch.connections if watch is not None else None))
        return [address]

    resolve.calls = calls
    return resolve


# --- delivered ------------------------------------------------------------------------------------------


def test_a_finished_task_is_posted_signed_as_a_cloudevent_through_the_handler(relay_env, emulator, receiver, out_dir):
    # Given a task ROS finished and a webhook beside a file store (the receiver on loopback: allow_private)
    emulator.add_task({"TaskId": "t-hook-1", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},{hook(receiver, allow_private='true')}")
    runtime.reset()
    # When fetch_task delivers it
    from relay_devkit.runner import LambdaContext, load_handler

    (result,) = load_handler("fetch_task")({"TaskId": "t-hook-1"}, LambdaContext(function_name="fetch_task"))["results"]
    # Then the webhook got one POST: the CloudEvent with the template inline, with the Standard Webhooks headers
    assert [d["outcome"] for d in result["deliveries"]] == ["created", "created"], result
    assert result["deliveries"][1]["destination"].endswith("allow_private=true&secret=***")
    (request,) = receiver.requests
    event = json.loads(request.body)
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"] == event["id"] == "t-hook-1:SUCCESS"
    assert event["type"] == "com.aliyun.ros.aitask.succeeded" and event["data"]["template"] == YAML
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    # and the signature verifies with the Standard Webhooks library, and fails for a changed body
    assert Webhook(SECRET).verify(request.body, request.headers)["id"] == "t-hook-1:SUCCESS"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"ALIYUN::ECS::VPC", b"ALIYUN::ECS::VPX"), request.headers)


def test_two_secrets_for_rotation_each_verify(receiver):
    # Given a webhook with two secrets (the old and the new one)
    destination = build_destination(hook(receiver, allow_private="true", secrets=(SECRET, NEXT)))
    # When a task is delivered
    assert destination.deliver(finished()).outcome == "created"
    # Then the signature header holds two v1 entries, and a receiver knowing either secret alone verifies it
    (request,) = receiver.requests
    assert [entry.split(",")[0] for entry in request.headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    for secret in (SECRET, NEXT):
        assert Webhook(secret).verify(request.body, request.headers)["subject"] == "t-hook-1"
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, request.headers)


@pytest.mark.parametrize("where", ["env", "secret"])
def test_secrets_named_by_reference_sign(receiver, aws, monkeypatch, where):
    # Given the two secrets kept in an environment variable or in Secrets Manager (moto), named by the URI
    if where == "env":
        variable = f"HOOK_SECRET_{uuid.uuid4().hex[:6].upper()}"
        monkeypatch.setenv(variable, f"{SECRET} {NEXT}")
        uri = hook(receiver, allow_private="true", secrets=(), secret_env=variable)
        destination = build_destination(uri, environ=os.environ)
    else:
        name = unique("hook-secret")
        aws.secrets.create_secret(Name=name, SecretString=json.dumps({"secret": f"{SECRET} {NEXT}"}))
        destination = build_destination(hook(receiver, allow_private="true", secrets=(), secret_secret=name))
    # When a task is delivered / Then each secret verifies it
    assert destination.deliver(finished()).outcome == "created"
    (request,) = receiver.requests
    for secret in (SECRET, NEXT):
        Webhook(secret).verify(request.body, request.headers)


def test_a_missing_or_invalid_secret_reference_fails_the_build_by_name_never_the_value(receiver, monkeypatch):
    uri = hook(receiver, allow_private="true", secrets=(), secret_env="HOOK_SECRET_MISSING")
    with pytest.raises(ConfigurationError, match="secret_env 'HOOK_SECRET_MISSING' is not set or is empty"):
        build_destination(uri, environ={})
    with pytest.raises(ConfigurationError, match="secret 1 of 1 does not start with whsec_") as caught:
        build_destination(uri, environ={"HOOK_SECRET_MISSING": "NEVER-LOGGED-plain"})
    assert "NEVER-LOGGED" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="a webhook is signed: give secret=whsec_"):
        build_destination(hook(receiver, allow_private="true", secrets=()))


def test_relay_signing_secret_and_the_uris_own_secret_both_sign(relay_env, emulator, receiver, monkeypatch):
    # Given the deployment's RELAY_SIGNING_SECRET (env:) and a webhook with its own secret
    monkeypatch.setenv("RELAY_TEST_SIGNING", SECRET)
    emulator.add_task({"TaskId": "t-hook-2", "Status": "FAILURE", "StatusReason": "quota"})
    relay_env.setenv("RELAY_SIGNING_SECRET", "env:RELAY_TEST_SIGNING")
    relay_env.setenv("RELAY_DESTINATIONS", hook(receiver, allow_private="true", secrets=(NEXT,)))
    runtime.reset()
    from relay_devkit.runner import LambdaContext, load_handler

    # When fetch_task delivers the task
    (result,) = load_handler("fetch_task")({"TaskId": "t-hook-2"}, LambdaContext(function_name="fetch_task"))["results"]
    # Then one request carries both signatures under one timestamp, and each secret verifies it alone
    assert [d["outcome"] for d in result["deliveries"]] == ["created"], result
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, NEXT):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "com.aliyun.ros.aitask.failed"


def test_a_webhook_signed_by_nothing_fails_the_cold_start(relay_env, receiver):
    relay_env.setenv("RELAY_DESTINATIONS", hook(receiver, allow_private="true", secrets=()))
    runtime.reset()
    with pytest.raises(ConfigurationError, match="a webhook is signed: give secret=whsec_"):
        runtime.config()


# --- recorded once --------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["dynamodb", "store"])
def test_an_event_already_announced_is_not_posted_again(receiver, aws, tmp_path, record):
    # Given the record of announcements: the ledger (DynamoDB on moto) or a store's marker
    if record == "dynamodb":
        ledger = build_ledger(f"dynamodb://{aws.ledger_table()}", expires_after_seconds=600)
        destination = build_destination(hook(receiver, allow_private="true"), ledger=ledger)
        stored = ()
    else:
        store = build_destination(tmp_path.as_uri())
        destination = build_destination(hook(receiver, allow_private="true"))
        destination.record_in(store)
        stored = (store.deliver(finished()),)
    # When the same event is delivered twice
    first, again = destination.deliver(finished(), stored), destination.deliver(finished(), stored)
    # Then it was POSTed once, and the repeat is already_present
    assert (first.outcome, again.outcome) == ("created", "already_present")
    assert len(receiver.requests) == 1


def test_a_body_above_max_body_bytes_goes_as_a_claim_check(receiver, tmp_path):
    # Given a webhook taking 1,024 bytes and a store that holds the template
    store = build_destination(tmp_path.as_uri())
    big = finished(result="Resources: {}\n" + "# padding\n" * 400)
    stored = (store.deliver(big),)
    destination = build_destination(hook(receiver, allow_private="true", max_body_bytes="1024"))
    # When delivered
    assert destination.deliver(big, stored).outcome == "created"
    # Then the body is within the cap and names the stored template instead of carrying it, still signed
    (request,) = receiver.requests
    data = json.loads(request.body)["data"]
    assert len(request.body) <= 1024 and "template" not in data and data["template_ref"] == stored[0].location
    Webhook(SECRET).verify(request.body, request.headers)


# --- failures -------------------------------------------------------------------------------------------


def test_a_receiver_that_is_down_is_a_retryable_failure_that_shows_no_secret(relay_env, emulator, watch_for_leaks):
    # Given a webhook on a closed port, its secret one that must never show
    seen = watch_for_leaks((NEXT, q(NEXT), NEXT.removeprefix("whsec_")[:16], "NEVER-LOGGED"))
    emulator.add_task({"TaskId": "t-hook-down", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    uri = f"http://127.0.0.1:{closed_port()}/hook?allow_private=true&secret={q(NEXT)}"
    relay_env.setenv("RELAY_DESTINATIONS", uri)
    runtime.reset()
    from relay_devkit.runner import LambdaContext, load_handler

    # When fetch_task delivers the task
    (result,) = seen(load_handler("fetch_task")({"TaskId": "t-hook-down"}, LambdaContext(function_name="f")))[
        "results"
    ]
    # Then the delivery failed retryably, and no answer, log line or record holds the secret
    (delivery,) = result["deliveries"]
    assert delivery["outcome"] == "failed" and delivery["error"]["retryable"] is True, delivery
    assert delivery["destination"] == f"{uri.partition('&secret=')[0]}&secret=***"
    assert "ConnectionRefusedError" in delivery["error"]["message"]
    seen.check()


def test_404_is_a_permanent_failure(receiver):
    receiver.answer(404)
    with pytest.raises(DestinationFailure) as caught:
        build_destination(hook(receiver, allow_private="true")).deliver(finished())
    assert not caught.value.retryable and caught.value.http_status == 404 and len(receiver.requests) == 1


def test_429_with_retry_after_is_waited_out_then_delivered_each_connection_checked_first(receiver):
    # Given a receiver answering 429 Retry-After: 1, then 200, under a name the hook resolves to it
    receiver.answer(429, {"Retry-After": "1"})
    resolve = resolver(watch=receiver)
    destination = build_destination(hook(receiver, host="webhook.test", allow_private="true"), resolve=resolve)
    # When delivered with a minute left in the invocation
    started = time.monotonic()
    delivery = destination.deliver(finished(), deadline=time.monotonic() + 60)
    # Then it waited a second, sent again (the same event, signed afresh) and delivered
    assert delivery.outcome == "created" and time.monotonic() - started >= 1.0
    assert [r.headers["webhook-id"] for r in receiver.requests] == ["t-hook-1:SUCCESS"] * 2
    # and the name was resolved (and checked) before each of the two connections, not once for both
    assert receiver.connections == 2
    assert resolve.calls == [("webhook.test", receiver.port, 0), ("webhook.test", receiver.port, 1)]


def test_a_retry_after_beyond_the_deadline_fails_retryably_without_waiting(receiver):
    # Given 503 Retry-After: 30 and five seconds left in the invocation
    receiver.answer(503, {"Retry-After": "30"})
    destination = build_destination(hook(receiver, allow_private="true"))
    started = time.monotonic()
    # When delivered / Then a retryable failure at once, after one request
    with pytest.raises(DestinationFailure, match=r"Retry-After \(30 s\) is beyond the invocation's remaining time"):
        destination.deliver(finished(), deadline=time.monotonic() + 5)
    assert time.monotonic() - started < 2 and len(receiver.requests) == 1


def test_a_receiver_trickling_its_answer_is_cut_at_the_invocations_deadline(receiver):
    # Given a receiver that sends its answer's header a byte every 0.2 s (each socket read well within timeout=1)
    receiver.answer(200, trickle=0.2)
    destination = build_destination(hook(receiver, allow_private="true", timeout="1"))
    started = time.monotonic()
    # When delivered with two seconds left in the invocation
    with pytest.raises(DestinationFailure, match="no answer within the request's time") as caught:
        destination.deliver(finished(), deadline=started + 2)
    # Then the request was cut at the deadline, not held by the receiver, and the failure is retryable
    assert caught.value.retryable and time.monotonic() - started < 3.0


def test_a_receiver_trickling_its_answer_is_cut_after_four_timeouts_without_a_deadline(receiver):
    # Given the same receiver and no invocation deadline (a direct invocation)
    receiver.answer(200, trickle=0.2)
    destination = build_destination(hook(receiver, allow_private="true", timeout="0.5"))
    started = time.monotonic()
    # When delivered / Then the whole request ended within four times timeout (2 s), retryably
    with pytest.raises(DestinationFailure, match=r"no answer within the request's time \(2 s\)") as caught:
        destination.deliver(finished())
    assert caught.value.retryable and 1.9 <= time.monotonic() - started < 3.0


def test_a_2xx_whose_headers_are_cut_by_a_closed_connection_is_no_delivery(receiver):
    # Given a receiver that sends "HTTP/1.1 200 OK" and half a header, then closes the connection
    receiver.answer(200, cut=True)
    destination = build_destination(hook(receiver, allow_private="true"))
    # When delivered / Then a retryable failure: the answer never ended, so the receiver may not have taken the event
    with pytest.raises(DestinationFailure, match="IncompleteRead") as caught:
        destination.deliver(finished())
    assert caught.value.retryable and len(receiver.requests) == 1


def test_a_slow_name_lookup_ends_at_the_invocations_deadline(receiver):
    # Given a name whose lookup takes three seconds (a resolver that does not answer), and one second left
    def slow(host, port):
        time.sleep(3)
        return ["127.0.0.1"]

    destination = build_destination(hook(receiver, host="webhook.test", allow_private="true"), resolve=slow)
    started = time.monotonic()
    # When delivered / Then a retryable failure at the deadline, saying the lookup ran out of time; nothing was sent
    with pytest.raises(DestinationFailure, match=r"webhook\.test not resolved within the request's time") as caught:
        destination.deliver(finished(), deadline=started + 1)
    assert caught.value.retryable and time.monotonic() - started < 1.5 and receiver.connections == 0


def test_a_redirect_is_not_followed(receiver):
    # Given a receiver answering 301 to another path of its own
    receiver.answer(301, {"Location": receiver.url(path="/elsewhere")})
    # When delivered / Then a permanent failure that says so, and nothing was sent to the Location
    with pytest.raises(DestinationFailure, match="answered HTTP 301, a redirect, which the relay never follows") as e:
        build_destination(hook(receiver, allow_private="true")).deliver(finished())
    assert not e.value.retryable
    assert [r.path for r in receiver.requests] == ["/hook"]


# --- addresses and TLS ----------------------------------------------------------------------------------


def test_a_name_resolving_to_loopback_is_refused_before_any_connection(receiver):
    # Given a webhook on a name (no allow_private) that resolves to 127.0.0.1
    resolve = resolver("127.0.0.1")
    destination = build_destination(hook(receiver, host="webhook.test"), resolve=resolve)
    # When delivered twice
    for _ in range(2):
        with pytest.raises(DestinationFailure, match=r"webhook\.test resolves to 127\.0\.0\.1, a loopback") as e:
            destination.deliver(finished())
        assert not e.value.retryable
    # Then the name was resolved for each, and the receiver never saw a connection
    assert len(resolve.calls) == 2 and receiver.connections == 0 and receiver.requests == []


def test_the_connection_goes_to_the_resolved_address_and_tls_is_checked_against_the_name(receiver):
    # Given a name no DNS knows (webhook.test), which the hook resolves to the receiver, named in its certificate
    destination = build_destination(hook(receiver, host="webhook.test", allow_private="true"), resolve=resolver())
    # When delivered / Then it arrived: the socket went to the hook's address, SNI and Host named webhook.test
    assert destination.deliver(finished()).outcome == "created"
    assert receiver.requests[0].headers["Host"] == f"webhook.test:{receiver.port}"


def test_a_certificate_for_another_name_is_refused_not_retryably(receiver):
    # Given a name the receiver's certificate does not hold, resolved to the receiver
    destination = build_destination(hook(receiver, host="other.test", allow_private="true"), resolve=resolver())
    # When delivered / Then TLS verification refuses it (SSLCertVerificationError), before any request
    with pytest.raises(DestinationFailure, match="SSLCertVerificationError") as caught:
        destination.deliver(finished())
    assert not caught.value.retryable and receiver.requests == []


def test_a_certificate_from_an_untrusted_ca_is_refused(receiver, monkeypatch):
    # Given a relay that does not trust the receiver's CA (no SSL_CERT_FILE: the system's store)
    monkeypatch.delenv("SSL_CERT_FILE")
    destination = build_destination(hook(receiver, allow_private="true"))
    # When delivered / Then refused by verification: it is never turned off
    with pytest.raises(DestinationFailure, match="SSLCertVerificationError"):
        destination.deliver(finished())
    assert receiver.requests == []
