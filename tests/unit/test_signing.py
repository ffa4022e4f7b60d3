"""adapters/destinations/signing.py and the signed forms of message.build_message, without a transport."""

from __future__ import annotations

import base64
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from aitask_relay.adapters.destinations.message import build_message
from aitask_relay.adapters.destinations.signing import Signer, canonical, check_reference, parse_secrets
from aitask_relay.core.errors import ConfigurationError, DestinationFailure
from aitask_relay.core.model import Delivery, Observation
from aitask_relay.core.normalize import normalize

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
NOW = 1_800_000_000
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()


def observation(result="Resources: {}\n", task_id="t-sign"):
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": result}}
    obs = normalize(body, task_id=task_id, observed_at="2026-11-29T00:00:00.000Z")
    return Observation(obs.result, obs.template)


def signer(*secrets):
    return Signer(lambda: secrets or (SECRET,), clock=lambda: NOW + 0.9)


def test_headers_are_standard_webhooks_over_the_exact_body():
    # Given a body with non-ASCII text
    body = '{"a":"模板 ✓"}'.encode()
    # When it is signed at a fractional second
    headers = signer().headers("t-1:SUCCESS", body)
    # Then the timestamp is the whole second, and the package's own sign gives the same signature
    assert headers["webhook-id"] == "t-1:SUCCESS" and headers["webhook-timestamp"] == str(NOW)
    from datetime import UTC, datetime

    expected = Webhook(SECRET).sign("t-1:SUCCESS", datetime.fromtimestamp(NOW, tz=UTC), body.decode())
    assert headers["webhook-signature"] == expected


def test_header_bytes_is_what_any_body_adds():
    # Given one and two secrets
    for secrets in ((SECRET,), (SECRET, "whsec_" + base64.b64encode(b"t" * 64).decode())):
        sign = signer(*secrets)
        # When header_bytes is asked and real headers are made for bodies of different sizes
        sizes = {sum(len(k) + len(v) for k, v in sign.headers("t-9:FAILURE", b"x" * n).items()) for n in (0, 7, 5000)}
        # Then it is their exact size
        assert sizes == {sign.header_bytes("t-9:FAILURE")}


def test_canonical_keeps_the_relays_attributes_and_ignores_order_spacing_and_what_a_bus_adds():
    event = {"id": "a", "data": [1, {"z": 1, "y": "é"}], "webhooktimestamp": "1", "webhooksignature": "v1,x"}
    # A bus adds attributes of its own on delivery (Alibaba Cloud EventBridge's aliyun*), and writes it out again
    delivered = {**event, "aliyunaccountid": "123", "aliyunpublishtime": "2026-11-30T00:00:00Z"}
    reordered = json.loads(json.dumps(dict(reversed(list(delivered.items()))), indent=3))
    assert canonical(event) == canonical(reordered) == '{"data":[1,{"y":"é","z":1}],"id":"a"}'.encode()


def test_an_embedded_signature_counts_in_the_size_and_moves_to_the_claim_check():
    # Given a message that fits the limit exactly without a signature
    obs = observation(result="Resources: {}\n" + "#" * 3000 + "\n")
    plain = build_message(obs, (), limit=1 << 20, where="q")
    stored = (Delivery("s3://b/", "s3://b/t-sign/template.yaml", "created"),)
    # When it is built with an embedded signature at that same limit
    signed = build_message(obs, stored, limit=len(plain.body), where="q", signer=signer(), embed=True)
    # Then the signature made it too large: it is a claim check, signed as it is sent
    assert signed.claim_check and len(signed.body) <= len(plain.body)
    event = json.loads(signed.body)
    headers = {"webhook-id": event["id"], "webhook-timestamp": event["webhooktimestamp"],
               "webhook-signature": event["webhooksignature"]}  # fmt: skip
    sign = signer().headers(event["id"], canonical(event))
    assert sign["webhook-signature"] == headers["webhook-signature"]
    assert event["data"]["template_ref"] == "s3://b/t-sign/template.yaml"


def test_a_header_signature_is_over_the_body_sent_and_joins_the_attributes():
    # Given a message too large inline, with a stored copy
    obs = observation(result="Resources: {}\n" + "#" * 4000 + "\n")
    stored = (Delivery("s3://b/", "s3://b/t-sign/template.yaml", "created"),)
    message = build_message(obs, stored, limit=2000, where="q", signer=signer())
    # Then the signature is over the claim check's body, and headers holds attributes and signature
    assert message.claim_check and message.headers["task_id"] == "t-sign"
    assert message.headers["webhook-signature"] == signer().headers(message.id, message.body)["webhook-signature"]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(message.body + b" ", message.signature)  # changed body (and an old timestamp)


def test_an_oversize_signed_message_without_a_store_still_fails_as_before():
    with pytest.raises(DestinationFailure) as caught:
        build_message(observation(result="x" * 5000), (), limit=1000, where="q", signer=signer(), embed=True)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (SECRET, "by reference"),
        ("secretsmanager:", "by reference"),
        ("env:1BAD", "a variable name"),
        ("secretsmanager:bad name", "a secret name or ARN"),
        ("file:/etc/secret", "by reference"),
    ],
)
def test_a_bad_reference_is_refused_without_the_value(value, problem):
    with pytest.raises(ConfigurationError) as caught:
        check_reference(value)
    assert "RELAY_SIGNING_SECRET" in str(caught.value) and problem in str(caught.value)
    assert SECRET[6:] not in str(caught.value)


def test_good_references_and_secret_lists():
    assert check_reference(" env:SIGNING ") == "env:SIGNING"
    assert check_reference("secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:relay-AbCd")
    other = "whsec_" + base64.b64encode(b"o" * 24).decode()
    assert parse_secrets(f" {SECRET}\n{other} ", "V") == (SECRET, other)
    with pytest.raises(ConfigurationError, match="is 65 bytes"):
        parse_secrets("whsec_" + base64.b64encode(b"o" * 65).decode(), "V")
    with pytest.raises(ConfigurationError, match="empty"):
        parse_secrets("  ", "V")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.text(max_size=8), _json, max_size=6), indent=st.sampled_from([None, 0, 2]))
def test_an_embedded_signature_verifies_after_any_reserialization(data, indent):
    # Given any event of strings, integers, booleans and nulls, signed in place
    event = {"specversion": "1.0", "id": "t-1:SUCCESS", "data": data}
    signer().embed(event)
    # When it is written out again with ASCII escapes, another indent and reversed keys, and read back
    received = json.loads(json.dumps(dict(reversed(list(event.items()))), ensure_ascii=True, indent=indent))
    headers = {"webhook-id": received["id"], "webhook-timestamp": received["webhooktimestamp"],
               "webhook-signature": received["webhooksignature"]}  # fmt: skip
    # Then its canonical form carries the same signature
    assert signer().headers(received["id"], canonical(received))["webhook-signature"] == headers["webhook-signature"]


def test_a_secret_that_cannot_be_read_again_signs_with_the_last_one_read():
    # Given a signer whose secret was read once and then cannot be read (Secrets Manager throttled)
    reads = iter([(SECRET,), ConfigurationError("RELAY_SIGNING_SECRET: secretsmanager: 'x' cannot be read")])

    def secrets():
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return value

    sign = Signer(secrets, clock=lambda: NOW)
    first = sign.headers("t-1:SUCCESS", b"{}")
    # When the next message is signed
    second = sign.headers("t-1:SUCCESS", b"{}")
    # Then it is signed with the secret last read, not failed
    assert second == first


def test_after_a_failed_read_the_last_secrets_sign_for_a_minute_unasked_with_one_warning_naming_the_reference(caplog):
    # Given a signer read well once, whose source then fails (a malformed rotated value), then holds a new secret
    answers = [(SECRET,), ConfigurationError("RELAY_SIGNING_SECRET: secret 1 of 1 is not whsec_<base64>"), (OTHER,)]
    asked = []
    now = [0.0]

    def secrets():
        asked.append(now[0])
        value = answers[min(len(asked), len(answers)) - 1]
        if isinstance(value, Exception):
            raise value
        return value

    sign = Signer(secrets, clock=lambda: NOW, source="RELAY_SIGNING_SECRET=secretsmanager:relay/sign",
                  monotonic=lambda: now[0])  # fmt: skip
    sign.headers("t-1:SUCCESS", b"{}")
    # When messages are sized and signed (two reads each) within the next minute
    now[0] = 10.0
    with caplog.at_level("WARNING", logger="aitask_relay.signing"):
        for _ in range(3):
            sign.header_bytes("t-1:SUCCESS")
            signed = sign.headers("t-1:SUCCESS", b"{}")
    # Then the source was asked once, one warning named the reference, and the last good secret signed
    assert asked == [0.0, 10.0] and signed == Signer(lambda: (SECRET,), clock=lambda: NOW).headers("t-1:SUCCESS", b"{}")
    warnings = [r.getMessage() for r in caplog.records if r.name == "aitask_relay.signing"]
    assert len(warnings) == 1 and "from RELAY_SIGNING_SECRET=secretsmanager:relay/sign" in warnings[0]
    # When a minute has passed / Then the source is asked again and its new secret signs
    now[0] = 71.0
    rotated = Signer(lambda: (OTHER,), clock=lambda: NOW)
    assert sign.headers("t-1:SUCCESS", b"{}") == rotated.headers("t-1:SUCCESS", b"{}")


def test_a_first_read_that_fails_still_fails():
    def secrets():
        raise ConfigurationError("RELAY_SIGNING_SECRET: env: 'X' is not set or is empty")

    with pytest.raises(ConfigurationError):
        Signer(secrets).headers("t-1:SUCCESS", b"{}")


@pytest.mark.parametrize("reference", [f"secretsmanager:{SECRET}", f"env:{SECRET}"])
def test_a_secret_pasted_as_its_own_name_is_refused_without_echo(reference):
    with pytest.raises(ConfigurationError) as caught:
        check_reference(reference)
    assert "not the secret" in str(caught.value) and SECRET[6:] not in str(caught.value)


def test_a_signing_key_without_its_reference_fails_the_cold_start():
    from aitask_relay.config import load_config

    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": "file:///tmp/x", "RELAY_SIGNING_KEY": SECRET})
    assert "RELAY_SIGNING_SECRET=env:RELAY_SIGNING_KEY" in str(caught.value) and SECRET[6:] not in str(caught.value)
    assert load_config({"RELAY_DESTINATIONS": "file:///tmp/x", "RELAY_SIGNING_KEY": " "}).signing_secret is None


@pytest.mark.parametrize("stored", [SECRET, json.dumps({"secret": SECRET}), json.dumps({"secret": SECRET, "x": 1})])
def test_relay_signing_secret_in_secrets_manager_is_the_secret_or_json_with_a_secret_string_as_a_webhooks(stored):
    # Given the secret as Secrets Manager holds it: the whsec_ value, or JSON with "secret" (a webhook's form too)
    # When RELAY_SIGNING_SECRET names it / Then it signs with that secret
    signer = Signer.from_reference("secretsmanager:relay/sign", environ={}, fetch=lambda name: stored)
    headers = signer.headers("t-1:SUCCESS", b"{}")
    assert Webhook(SECRET).verify(b"{}", headers) == {}


def test_relay_signing_secret_json_without_a_secret_string_fails_naming_the_key_never_the_value():
    stored = json.dumps({"password": SECRET})
    with pytest.raises(ConfigurationError, match='JSON with a "secret" string') as caught:
        Signer.from_reference("secretsmanager:relay/sign", environ={}, fetch=lambda name: stored)
    assert SECRET[6:] not in caught.value.message
