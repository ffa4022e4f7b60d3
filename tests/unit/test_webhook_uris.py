"""Webhook URIs: which https:// URLs are webhooks and which stay SQS queue URLs, what a webhook URI accepts and
refuses at cold start, and that its secrets never show; the address rule (addresses.py)."""

import base64
from urllib.parse import quote

import pytest

from aitask_relay.adapters.destinations.addresses import refusal
from aitask_relay.adapters.destinations.uri import mask, parse_destination, redact, webhook_secrets
from aitask_relay.config import load_config
from aitask_relay.core.errors import ConfigurationError

SECRET = "whsec_" + base64.b64encode(bytes(range(200, 232))).decode()  # holds '+' and '/', as most secrets do
OTHER = "whsec_" + base64.b64encode(bytes(range(100, 124))).decode()
Q = quote(SECRET, safe="")


@pytest.mark.parametrize(
    "uri",
    [
        # every SQS queue URL an earlier version accepted reads as the same queue
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q1",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q1.fifo",
        "https://eu-west-1.queue.amazonaws.com/123456789012/q1",
        "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q1/",
        "http://127.0.0.1:5000/123456789012/relay-out",  # a local stand-in's endpoint
        "https://queue.example.internal/123456789012/relay-out",  # a custom endpoint, no query
    ],
)
def test_sqs_queue_urls_still_read_as_sqs(uri):
    # Given an SQS queue URL / When parsed / Then it is an SQS destination named by its URL
    spec = parse_destination(uri)
    assert (spec.scheme, spec.queue, spec.target) == ("sqs", uri, f"sqs://{uri.rstrip('/').rsplit('/', 1)[1]}")


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        # a mistyped queue URL on an SQS host is still refused as one, never taken for a webhook
        ("https://sqs.us-east-1.amazonaws.com/12/q", "is not an SQS queue URL"),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/q?secret=x", "is not an SQS queue URL"),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/a/b", "is not an SQS queue URL"),
    ],
)
def test_a_mistyped_queue_url_on_an_sqs_host_is_refused_as_a_queue_url(uri, problem):
    with pytest.raises(ConfigurationError, match=problem):
        parse_destination(uri)


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        (f"https://hooks.example.com/ros?secret={Q}", "webhook:https://hooks.example.com:443/ros"),
        (f"https://Hooks.Example.com:8443/a/b/c?secret={Q}", "webhook:https://hooks.example.com:8443/a/b/c"),
        (f"https://hooks.example.com?secret={Q}", "webhook:https://hooks.example.com:443/"),
        # a queue-like path with a query is a webhook: the query is what tells it apart
        (f"https://hooks.example.com/123456789012/q?secret={Q}", "webhook:https://hooks.example.com:443/123456789012/q"),
        ("https://hooks.example.com/x?secret_env=HOOK_SECRET", "webhook:https://hooks.example.com:443/x"),
        ("https://hooks.example.com/x?secret_secret=prod/hook", "webhook:https://hooks.example.com:443/x"),
        (f"http://127.0.0.1:8080/x?allow_private=true&secret={Q}", "webhook:http://127.0.0.1:8080/x"),
        (f"https://10.0.0.5/x?allow_private=true&secret={Q}", "webhook:https://10.0.0.5:443/x"),
    ],
)
def test_every_other_https_url_is_a_webhook(uri, target):
    # Given an https URL that is not a queue's / When parsed / Then it is a webhook, known by its URL without query
    spec = parse_destination(uri)
    assert (spec.scheme, spec.kind, spec.target) == ("https", "queue", target)
    assert "secret" not in spec.params  # the spec's params show in reprs: the literal secret is not among them
    assert SECRET not in repr(spec) and Q not in repr(spec)


def test_a_webhooks_defaults_are_in_its_params():
    spec = parse_destination(f"https://hooks.example.com/x?secret={Q}")
    assert {k: spec.params[k] for k in ("allow_private", "max_body_bytes", "timeout")} == {
        "allow_private": "false",
        "max_body_bytes": str(256 * 1024),
        "timeout": "10.0",
    }


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        (f"http://hooks.example.com/x?secret={Q}", "a webhook is https://; plain http:// only for a loopback host"),
        (f"http://127.0.0.1/x?secret={Q}", "plain http:// only for a loopback host with allow_private=true"),
        (f"https://user:pw@hooks.example.com/x?secret={Q}", "a webhook URL takes no user:password@"),
        (f"https://127.0.0.1/x?secret={Q}", "127.0.0.1 is a loopback address: add allow_private=true"),
        (f"https://169.254.169.254/x?secret={Q}", "169.254.169.254 is a cloud metadata address"),
        (f"https://100.100.100.200/x?secret={Q}", "100.100.100.200 is a cloud metadata address"),
        (f"https://[::ffff:10.0.0.1]/x?secret={Q}", "is a private address"),
        (f"https://hooks.example.com/x?secret={Q}&allow_private=yes", "allow_private must be true or false"),
        (f"https://hooks.example.com/x?secret={Q}&max_body_bytes=100", "max_body_bytes must be an integer from 1024"),
        (f"https://hooks.example.com/x?secret={Q}&timeout=0", "timeout must be a number of seconds from 0.1 to 30"),
        (f"https://hooks.example.com/x?secret={Q}&timeout=31", "timeout must be a number of seconds"),
        (f"https://hooks.example.com/x?secret={Q}&token=abc", "an unknown query parameter, not named: it may be"),
        ("https://hooks.example.com/x?secret_env=HOOK&token=abc", "unknown query parameter 'token'"),
        (f"https://hooks.example.com/x?secret={Q}&secret_env=X", "gives a secret and secret_env"),
        ("https://hooks.example.com/x?secret_env=X&secret_secret=y", "give secret_secret or secret_env, not both"),
        ("https://hooks.example.com/x?secret_env=1X", "secret_env must be a variable name"),
        ("https://hooks.example.com/x?secret=", "the signing secret is empty"),
        ("https://hooks.example.com/x?secret=hunter2-NEVER-SHOWN", "secret 1 of 1 does not start with whsec_"),
        # an unencoded '+' reads as a space, which separates secrets: the error says how to write it
        (f"https://hooks.example.com/x?secret={SECRET}", "1 of 2 is not whsec_<base64> (in a URI write a secret's '+'"),
        ("https://hooks.example.com/x?secret=whsec_c2hvcnQ=", "secret 1 of 1 is 5 bytes; Standard Webhooks secrets"),
        ("https://hooks.example.com/x", "a webhook is signed: give secret=whsec_..., secret_secret= or secret_env="),
        (f"https://hooks.example.com/x?secret={Q}#frag", "takes no #fragment"),
        ("https://:443/x", "names no host"),
    ],
)
def test_a_bad_webhook_uri_fails_at_cold_start_naming_the_problem_never_the_secret(uri, problem):
    # Given a bad webhook entry / When the configuration is loaded
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": uri})
    # Then the error names the variable and the problem, and shows no secret
    message = caught.value.message
    assert message.startswith("RELAY_DESTINATIONS entry ") and problem in message, message
    for secret in (SECRET, Q, SECRET.removeprefix("whsec_")[:20], "hunter2", "NEVER-SHOWN"):
        assert secret not in message


def test_two_secrets_for_rotation_each_checked():
    # Given two secrets separated by a space ('+' or %20 in the URI)
    text = f"{SECRET} {OTHER}"
    # When read / Then both are kept in order; a bad second one is named by its position only
    assert webhook_secrets(text, where="w") == (SECRET, OTHER)
    for spelled in ("+", "%20"):
        parse_destination(f"https://hooks.example.com/x?secret={Q}{spelled}{quote(OTHER, safe='')}")
    with pytest.raises(ConfigurationError, match=r"^w: secret 2 of 2 is not whsec_<base64>") as caught:
        webhook_secrets(f"{SECRET} whsec_no!", where="w")
    assert SECRET not in caught.value.message


H = "https://h.example/x"


@pytest.mark.parametrize(
    ("uri", "named", "shown"),
    [
        (f"{H}?secret={Q}", f"{H}?secret=***", f"{H}?secret=***"),
        (f"{H}?allow_private=true&secret={Q}&timeout=2", f"{H}?allow_private=true&secret=***&timeout=2",
         f"{H}?allow_private=true&secret=***"),
        (f"{H}?s%65cret={Q}", f"{H}?s%65cret=***", f"{H}?s%65cret=***"),  # the key as the parser reads it
        (f"{H}?SECRET={Q}", f"{H}?SECRET=***", f"{H}?SECRET=***"),
        (f"{H}?secret_env=HOOK", f"{H}?secret_env=HOOK", f"{H}?secret_env=HOOK"),  # a name, not a secret
        (f"{H}?secret=a#b&secret=c", f"{H}?secret=***#b&secret=***", f"{H}?secret=***"),
        # a second '?' puts the key inside another value, where the parser does not see it: masked all the same
        (f"{H}?timeout=5?secret={Q}", f"{H}?timeout=5?secret=***", f"{H}?timeout=5?secret=***"),
    ],
)  # fmt: skip
def test_redact_names_a_uri_by_its_parsed_values_and_mask_hides_everything_after_a_secret(uri, named, shown):
    # Given a URI with secret parameters / When named (redact) and shown in an error (mask)
    # Then redact hides each value as the parser reads it; mask (for text that may not parse) hides all that follows
    assert redact(uri) == named
    assert mask(uri) == shown


@pytest.mark.parametrize(
    "uri",
    [
        f"https://hooks.example.com/x?timeout=5?secret={Q}",  # a mistyped '?': the secret is inside timeout's value
        f"https://hooks.example.com/x?secret={SECRET[:20]}&{SECRET[20:]}",  # an unencoded '&' inside the secret
        f"https://hooks.example.com/x?secret={SECRET[:20]}#{SECRET[20:]}",  # an unencoded '#' inside the secret
        f"https://hooks.example.com/x?secret={SECRET[:20]};{SECRET[20:]}",
    ],
)
def test_a_secret_cut_by_a_stray_separator_shows_no_part_of_it_in_the_error(uri):
    # Given a webhook URI whose secret a stray '?', '&', '#' or ';' splits / When loaded
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": uri})
    # Then the error shows no piece of the secret, neither before the separator nor after it
    message = caught.value.message
    for piece in (Q, SECRET[6:20], SECRET[20:], SECRET[20:32]):
        assert piece not in message, message


@pytest.mark.parametrize("value", ["²", "٣٠٠٠", "1e4", "+2048", " 2048", "9" * 5000])
def test_a_body_size_that_is_not_ascii_digits_is_a_typed_error(value):
    # Given a size written with digits int() might refuse or read otherwise / When loaded
    # Then a ConfigurationError naming the parameter, not a ValueError
    with pytest.raises(ConfigurationError, match="max_body_bytes must be an integer from 1024"):
        load_config({"RELAY_DESTINATIONS": f"https://hooks.example.com/x?secret={Q}&max_body_bytes={quote(value)}"})


@pytest.mark.parametrize(
    "uri",
    [
        "amqp://guest:guest@127.0.0.1:5672/%2F?exchange=x&max_message_bytes={}",
        "eventbridge://bus?max_message_bytes={}",
    ],
)
@pytest.mark.parametrize("value", ["²", "٣٠٠٠", "9" * 5000])
def test_max_message_bytes_that_is_not_ascii_digits_is_a_typed_error(uri, value):
    with pytest.raises(ConfigurationError, match="max_message_bytes must be an integer from 1024"):
        load_config({"RELAY_DESTINATIONS": uri.format(quote(value))})


def test_a_webhook_is_named_without_its_secret():
    spec = parse_destination(f"https://hooks.example.com/x?secret={Q}")
    assert spec.name == "https://hooks.example.com/x?secret=***"


def test_the_same_webhook_twice_is_refused_whatever_its_secret():
    with pytest.raises(ConfigurationError, match="name the same destination"):
        load_config(
            {
                "RELAY_DESTINATIONS": f"https://hooks.example.com/x?secret={Q},"
                f"https://HOOKS.example.com:443/x?secret={quote(OTHER, safe='')}"
            }
        )


def test_a_webhook_without_its_own_secret_is_signed_by_relay_signing_secret():
    # Given no secret in the URI but RELAY_SIGNING_SECRET set / When loaded / Then accepted (that secret signs)
    config = load_config({"RELAY_DESTINATIONS": "https://h.example/x", "RELAY_SIGNING_SECRET": "env:SIGNING"})
    assert config.destinations == ("https://h.example/x",)


def test_a_tracking_queue_must_be_an_sqs_queue_not_a_webhook():
    # Given an https:// URL that is not a queue URL as the tracking queue / When loaded / Then refused by name
    with pytest.raises(ConfigurationError, match=r"RELAY_TRACKING_QUEUE 'https://hooks\.example\.com/x': names no SQS"):
        load_config({"RELAY_DESTINATIONS": "file:///tmp/x", "RELAY_TRACKING_QUEUE": "https://hooks.example.com/x"})


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("0.0.0.0", "a private address"),  # noqa: S104 - an address refused, not bound
        ("::", "a private address"),
        ("100.64.0.1", "not a public address"),
        ("224.0.0.1", "not a public address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1 inside 2002:7f00:1::)"),
        ("64:ff9b::7f00:1", "not a public address"),
        # global to ipaddress on Python 3.12.1, not to the IANA registries
        ("192.0.0.8", "not a public address"),
        ("192.0.0.170", "a private address"),
        ("3fff::1", "not a public address"),
        ("fec0::1", "not a public address"),
        ("::ffff:192.0.0.8", "not a public address"),
        ("host.example", "not an IP address"),
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address, reason):
    assert refusal(address) == reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "192.0.0.9", "192.0.0.10"]
)
def test_public_addresses_are_allowed(address):
    assert refusal(address) is None
