"""Destination and ledger URIs: what is accepted, what fails at cold start, and that no password shows."""

import pytest

from aitask_relay.adapters.destinations.uri import amqp_connection_uri, mask, parse_destination, redact
from aitask_relay.config import load_config
from aitask_relay.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("uri", "scheme", "kind", "place", "prefix"),
    [
        ("s3://my-bucket/templates/", "s3", "store", "my-bucket", "templates/"),
        ("s3://my-bucket/a/b", "s3", "store", "my-bucket", "a/b/"),
        ("s3://my-bucket", "s3", "store", "my-bucket", ""),
        ("oss://oss-bucket/x/?region=cn-hangzhou", "oss", "store", "oss-bucket", "x/"),
        ("sqs://relay-events", "sqs", "queue", "relay-events", ""),
        ("sqs://relay-events.fifo", "sqs", "queue", "relay-events.fifo", ""),
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/q1",
            "sqs",
            "queue",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/q1",
            "",
        ),
        (
            "amqp://u:p@mq.example:5672/vh?exchange=ros&routing_key=done&allow_plaintext=true",
            "amqp",
            "queue",
            "done",
            "",
        ),
        ("amqp://u:p@127.0.0.1/vh?routing_key=done", "amqp", "queue", "done", ""),
        ("amqps://u:p@mq.example/%2F?routing_key=done", "amqps", "queue", "done", ""),
        ("mns://relay-out?endpoint=1234.mns.cn-hangzhou.aliyuncs.com", "mns", "queue", "relay-out", ""),
        ("mns://relay-out?endpoint=http://127.0.0.1:9911", "mns", "queue", "relay-out", ""),
    ],
)
def test_accepted_uris(uri, scheme, kind, place, prefix):
    # Given a valid URI of each scheme / When parsed / Then the field of its role holds the bucket, queue or
    # routing key (no field holds "a bucket, a directory, a queue or a routing key")
    spec = parse_destination(uri)
    assert (spec.scheme, spec.kind, _place(spec), spec.prefix) == (scheme, kind, place, prefix)


def _place(spec):
    """The field of the spec's role: a store's bucket or directory, a queue's name or URL, AMQP's routing key."""
    return {
        "file": spec.directory,
        "s3": spec.bucket,
        "oss": spec.bucket,
        "sqs": spec.queue,
        "amqp": spec.routing_key,
        "amqps": spec.routing_key,
        "mns": spec.queue,
    }[spec.scheme]


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://", "names no valid S3 bucket"),
        ("s3://Bad_Bucket/", "names no valid S3 bucket"),
        ("s3://my-bucket/a/../b/", "'..'"),
        ("s3://my-bucket/?sse=rot13", "sse must be one of"),
        ("s3://my-bucket/?kms_key_id=k", "kms_key_id needs sse=aws:kms"),
        ("s3://my-bucket/?colour=blue", "unknown query parameter 'colour'"),
        ("oss://oss-bucket/", "needs ?region="),
        ("oss://oss-bucket/?region=cn-hangzhou&endpoint=http://oss.example.com", "plain http is allowed only"),
        ("sqs://", "names no valid SQS queue"),
        ("sqs://a/b", "names no valid SQS queue"),
        ("sqs://" + "q" * 81, "names no valid SQS queue"),
        ("http://sqs.example.com/123456789012/q", "plain http is allowed only"),
        ("https://sqs.us-east-1.amazonaws.com/12/q", "is not an SQS queue URL"),
        ("amqp://mq.example/%2F", "needs exchange=... and/or routing_key="),
        ("amqp:///%2F?routing_key=q", "names no broker host"),
        ("amqp://mq.example/%2F?routing_key=q&max_message_bytes=1", "max_message_bytes must be"),
        ("amqp://mq.example:99999/%2F?routing_key=q", "is not a valid URI"),
        ("amqp://mq.example/%2F?routing_key=q&heartbeat=often", "heartbeat must be an integer"),
        ("amqps://mq.example/%2F?routing_key=q&ssl_options=x", "unknown query parameter 'ssl_options'"),
        ("amqp://mq.example/%2F?routing_key=q", "amqp:// sends the broker password and every template in clear text"),
        ("amqp://mq.example/%2F?routing_key=q&allow_plaintext=yes", "allow_plaintext must be true or false"),
        ("s3://my-bucket/?sse=AES256&sse=aws:kms", "gives 'sse' twice"),
        ("nats://x", "unknown scheme"),
        ("mns://relay-out", "mns://<queue> needs exactly one ?endpoint"),
        ("mns://relay-out?endpoint=e.example&region=cn-hangzhou", "mns://<queue> needs exactly one ?endpoint"),
        ("mns://relay_out?endpoint=1234.mns.cn-hangzhou.aliyuncs.com", "is not an MNS queue name"),
        ("mns://relay-out/x?endpoint=1234.mns.cn-hangzhou.aliyuncs.com", "has no path"),
        ("mns://relay-out?endpoint=http://1234.mns.cn-hangzhou.aliyuncs.com", "http:// only to a loopback host"),
        ("mns://key:secret@relay-out?endpoint=1234.mns.cn-hangzhou.aliyuncs.com", "takes no user@"),
    ],
)
def test_bad_uris_fail_at_cold_start_naming_the_variable_and_the_entry(uri, problem):
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": f"file:///tmp/ok,{uri}"})
    assert caught.value.message.startswith("RELAY_DESTINATIONS entry ")
    assert problem in caught.value.message


def test_passwords_never_appear_in_names_or_errors():
    uri = "amqp://relay:TopSecret@mq.example:5672/vh?routing_key=q&max_message_bytes=2"
    assert redact(uri) == "amqp://relay:***@mq.example:5672/vh?routing_key=q&max_message_bytes=2"
    with pytest.raises(ConfigurationError) as caught:
        parse_destination(uri)
    assert "TopSecret" not in str(caught.value) and "amqp://***@mq.example" in str(caught.value)
    spec = parse_destination("amqps://relay:TopSecret@mq.example/vh?routing_key=q")
    assert "TopSecret" not in spec.name and "TopSecret" not in repr(spec)


def test_pika_gets_the_uri_without_the_relays_own_parameters():
    uri = "amqp://u:p@mq.example/vh?exchange=e&routing_key=k&heartbeat=30&max_message_bytes=2048&allow_plaintext=true"
    spec = parse_destination(uri)
    assert amqp_connection_uri(spec) == "amqp://u:p@mq.example/vh?heartbeat=30"
    assert spec.params["max_message_bytes"] == "2048" and spec.params["exchange"] == "e"


@pytest.mark.parametrize(
    ("ledger", "ok"),
    [
        ("dynamodb://relay-ledger", True),
        ("redis://127.0.0.1:6379/0", True),
        ("rediss://:pw@cache.example:6380/2", True),
        ("dynamodb://ab", False),
        ("dynamodb://table/extra", False),
        ("redis://127.0.0.1:6379/zero", False),
        ("memcached://x", False),
    ],
)
def test_ledger_uris(ledger, ok):
    if ok:
        assert load_config({"RELAY_LEDGER": ledger}).ledger == ledger
    else:
        with pytest.raises(ConfigurationError, match="RELAY_LEDGER"):
            load_config({"RELAY_LEDGER": ledger})


def test_ledger_errors_hide_the_password_and_expiry_is_bounded():
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_LEDGER": "redis://:hunter2@cache:6379/x"})
    assert "hunter2" not in caught.value.message
    assert load_config({"RELAY_LEDGER_EXPIRY_SECONDS": "3600"}).ledger_expiry_seconds == 3600
    with pytest.raises(ConfigurationError, match="RELAY_LEDGER_EXPIRY_SECONDS"):
        load_config({"RELAY_LEDGER_EXPIRY_SECONDS": "5"})


def test_plain_http_to_ros_needs_an_explicit_opt_in_off_loopback():
    env = {"ROS_ENDPOINT": "ros.internal.example:80", "ROS_PROTOCOL": "http"}
    with pytest.raises(ConfigurationError, match="ROS_ALLOW_PLAINTEXT=true"):
        load_config(env)
    assert load_config(env | {"ROS_ALLOW_PLAINTEXT": "true"}).ros.protocol == "http"


# An error shows the entry (masked) and then the problem: each fragment below starts right after "': ", so a
# message that lost or garbled its problem, or the list of what is accepted, fails the test.
@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://Bad_Bucket/", "names no valid S3 bucket (s3://bucket/prefix/)"),
        ("s3://my-bucket/?sse=rot13", "sse must be one of AES256, aws:kms, aws:kms:dsse"),
        # A blank value is a value: sse= is not silently dropped (it would mean no encryption asked for)
        ("s3://my-bucket/?sse=", "sse must be one of"),
        ("s3://my-bucket/?kms_key_id=k", "kms_key_id needs sse=aws:kms"),
        ("s3://my-bucket/?sse", "has a malformed query string"),
        ("s3://my-bucket/?colour=blue", "unknown query parameter 'colour' (accepted: sse, kms_key_id)"),
        ("s3://my-bucket/a//b/", "the prefix has an empty, '.' or '..' segment"),
        ("s3://my-bucket/a/./b/", "the prefix has an empty, '.' or '..' segment"),
        ("s3://my-bucket/#frag", "takes no #fragment"),
        ("oss://Bad_Bucket/?region=cn-hangzhou", "names no valid OSS bucket (oss://bucket/prefix/?region=...)"),
        ("oss://oss-bucket/", "needs ?region=<OSS region id>, e.g. region=cn-hangzhou"),
        ("oss://oss-bucket/?region=cn-hangzhou&colour=blue", "unknown query parameter 'colour' (accepted: region, "),
        ("oss://oss-bucket/a/../?region=cn-hangzhou", "the prefix has an empty, '.' or '..' segment"),
        (
            "oss://oss-bucket/?region=cn-hangzhou&endpoint=ftp://oss.example.com",
            "the endpoint must be host[:port] or an http(s):// URL",
        ),
        (
            "oss://oss-bucket/?region=cn-hangzhou&endpoint=http://oss.example.com",
            "plain http is allowed only for a loopback endpoint",
        ),
        ("file://relative/dir", "a file destination is file:///absolute/dir"),
        ("sqs://", "names no valid SQS queue (sqs://<queue-name>, up to 80 characters)"),
        ("sqs://relay-events/X", "names no valid SQS queue"),  # a path, whatever it holds
        ("sqs://relay-events?colour=blue", "unknown query parameter 'colour' (accepted: none)"),
        ("https://u:p@sqs.eu-west-1.amazonaws.com/123456789012/out", "an SQS queue URL takes no user:password@"),
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/out?x=1",
            "is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue-name>)",
        ),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/bad!name", "is not an SQS queue URL"),
        (
            "nats://x",
            "unknown scheme (supported: file://, s3://, oss://, sqs://, amqp://, amqps://, eventbridge://, sns://, "
            "mns://, acs-eventbridge://, https://: a webhook or an SQS queue URL)",
        ),
        ("amqps://u:p@mq.example:notaport/vh?routing_key=q", "is not a valid URI (percent-encode"),
        ("amqps://mq.example/vh", "needs exchange=... and/or routing_key=... (the default exchange routes by"),
        ("amqp:///%2F?routing_key=q", "names no broker host (amqps://user@host:port/vhost"),
        ("amqps://mq.example/%2F?routing_key=q&allow_plaintext=yes", "allow_plaintext must be true or false"),
        (
            "amqp://mq.example/%2F?routing_key=q",
            "amqp:// sends the broker password and every template in clear text: use amqps://, or add "
            "allow_plaintext=true for a broker reached over a private network",
        ),
        # The user name's text again after the host: the '@' there is still outside the userinfo
        ("amqps://u@mq/u@mq?routing_key=q", "has an '@' outside user:password@host"),
    ],
)
def test_an_error_names_the_entry_and_then_the_problem(uri, problem):
    # Given a bad entry; When it is parsed
    with pytest.raises(ConfigurationError) as caught:
        parse_destination(uri)
    # Then the message is the masked entry followed by what is wrong with it
    assert caught.value.message.startswith(f"RELAY_DESTINATIONS entry {mask(uri)!r}: {problem}")


def test_an_unparsable_uri_without_an_at_sign_gets_no_percent_encoding_hint():
    # Given an entry with a bad port and no userinfo: there is no password to percent-encode
    uri = "amqp://mq.example:99999/%2F?routing_key=q"
    with pytest.raises(ConfigurationError) as caught:
        parse_destination(uri)
    # Then the message says only that it is not a valid URI
    assert caught.value.message == f"RELAY_DESTINATIONS entry {uri!r}: is not a valid URI"


@pytest.mark.parametrize(
    ("uri", "kind", "target", "place", "prefix", "params"),
    [
        ("file:///tmp/x", "store", "/tmp/x/", "/tmp/x", "", {}),
        ("file://localhost/tmp/x/", "store", "/tmp/x/", "/tmp/x/", "", {}),
        # A prefix keeps its case and its letters: only the slashes around it go
        ("s3://my-bucket/X/", "store", "s3://my-bucket/X/", "my-bucket", "X/", {}),
        (
            "oss://oss-bucket/x/?region=cn-hangzhou",
            "store",
            "oss://oss-bucket/x/",
            "oss-bucket",
            "x/",
            {"region": "cn-hangzhou"},
        ),
        (
            "oss://oss-bucket/?region=cn-hangzhou&endpoint=oss-cn-hangzhou.aliyuncs.com",  # a host: https is implied
            "store",
            "oss://oss-bucket/",
            "oss-bucket",
            "",
            {"region": "cn-hangzhou", "endpoint": "oss-cn-hangzhou.aliyuncs.com"},
        ),
        (
            "oss://oss-bucket/?region=cn-hangzhou&endpoint=http://127.0.0.1:9000",  # plain http to a loopback endpoint
            "store",
            "oss://oss-bucket/",
            "oss-bucket",
            "",
            {"region": "cn-hangzhou", "endpoint": "http://127.0.0.1:9000"},
        ),
        ("sqs://relay-events/", "queue", "sqs://relay-events", "relay-events", "", {}),
        (
            "mns://relay-out?endpoint=1234.mns.cn-hangzhou.aliyuncs.com",
            "queue",
            "https://1234.mns.cn-hangzhou.aliyuncs.com/queues/relay-out",
            "relay-out",
            "",
            {"endpoint": "https://1234.mns.cn-hangzhou.aliyuncs.com"},
        ),
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/EventsX",
            "queue",
            "sqs://EventsX",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/EventsX",
            "",
            {},
        ),
        (
            "amqp://u:p@127.0.0.1/vh?routing_key=done",
            "queue",
            "amqp://127.0.0.1:5672/'vh'?exchange=''&routing_key='done'",
            "done",
            "",
            {"routing_key": "done", "max_message_bytes": "4194304"},  # the default limit is what the queue reads
        ),
        (
            "amqps://mq.example/?exchange=ros",
            "queue",
            "amqp://mq.example:5671/'/'?exchange='ros'&routing_key=''",
            "",
            "",
            {"exchange": "ros", "max_message_bytes": "4194304"},
        ),
    ],
)
def test_an_accepted_entry_keeps_its_uri_and_is_known_by_its_target(uri, kind, target, place, prefix, params):
    # Given a valid entry; When it is parsed
    spec = parse_destination(uri)
    # Then the spec keeps the URI as written, is named by it without password, and is identified by the
    # normalized target that tells two entries for one destination apart (a port or vhost left out is pika's
    # default; a blank exchange is the default exchange)
    assert (spec.kind, spec.uri, spec.name) == (kind, uri, redact(uri))
    assert (spec.target, _place(spec), spec.prefix) == (target, place, prefix)
    assert spec.params == params


@pytest.mark.parametrize(
    "query",
    ["max_message_bytes=1024", "max_message_bytes=134217728", "heartbeat=0", "retry_delay=0", "connection_attempts=1"],
)
def test_the_amqp_limits_include_their_bounds(query):
    # Given an AMQP entry with a setting at the edge of its range; Then it is accepted
    spec = parse_destination(f"amqps://mq.example/vh?routing_key=q&{query}")
    key, _, value = query.partition("=")
    assert spec.params[key] == value


def test_mask_replaces_all_userinfo_whatever_it_holds():
    # A password holding "://" does not move the start of the masked part
    assert mask("amqps://u:pass://word@host/vh") == "amqps://***@host/vh"
    # An "@" at the very start, or text starting with "://", is masked from where the userinfo would be
    assert mask("@mq.example/vh") == "***@mq.example/vh"
    assert mask("://u:pw@host") == "://***@host"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("rediss://:LEFTHALF@cache.example:6380/0", "rediss://:***@cache.example:6380/0"),  # no user name
        ("amqps://u:LEFTHALF@[::1/vh", "amqps://***@[::1/vh"),  # urlsplit refuses it: masked whole
        ("amqps://relay:12/LEFTHALF@mq.example/vh", "amqps://***@mq.example/vh"),  # '@' after the parsed netloc
        ("amqp://u:LEFTHALF@h/x/u:LEFTHALF@h", "amqp://***@h"),  # the netloc's text again in the path
    ],
)
def test_redact_hides_the_password_however_the_uri_is_written(uri, shown):
    # Given a URI with a password where a parser may not expect it; When it is redacted; Then none of it shows
    assert redact(uri) == shown


@pytest.mark.parametrize(
    ("uri", "given"),
    [
        ("amqps://relay@mq.example/vh?routing_key=q&password_env=MQ_PASSWORD&heartbeat=30", "amqps://relay:"),
        ("amqps://mq.example/vh?routing_key=q&password_secret=prod/mq&heartbeat=30", "amqps://guest:"),
    ],
)
def test_pika_gets_a_placeholder_password_for_a_password_named_by_reference(uri, given):
    # Given an AMQP entry whose password is named by reference (with a user name, or none: pika's guest)
    spec = parse_destination(uri)
    # Then pika's URI has the user, a placeholder password, the host and its own parameters only
    assert amqp_connection_uri(spec) == f"{given}by-reference@mq.example/vh?heartbeat=30"


@pytest.mark.parametrize(
    ("ledger", "problem"),
    [
        ("redis://127.0.0.1:6379/X", "expected redis://[user:password@]host:port/<db number>"),
        ("redis://127.0.0.1:6379/²", "expected redis://[user:password@]host:port/<db number>"),
        ("redis://127.0.0.1:6379/0?allow_plaintext", "is not a valid URI (percent-encode"),  # no '=': malformed
        ("rediss://cache.example:6380/0#frag", "an '@' or '#' outside user:password@host: percent-encode"),
        ("rediss://relay:12/LEFTHALF@cache.example:6380/0", "an '@' or '#' outside user:password@host"),
        # The netloc's text again in the query: the '@' there is still outside the userinfo
        ("rediss://u@cache.example:6380/0?ssl_ca_path=u@cache.example:6380", "an '@' or '#' outside"),
        ("rediss://cache.example:6380/0?ssl_cert_reqs=required&ssl_cert_reqs=required", "gives a query option twice"),
        (
            "rediss://cache.example:6380/0?colour=blue",
            "unknown option 'colour' (accepted: allow_plaintext, password_secret, password_env, ssl_cert_reqs, "
            "ssl_check_hostname, ssl_ca_certs, ssl_ca_path, ssl_min_version)",
        ),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=required", "ssl_ options need rediss://"),
        ("redis://127.0.0.1:6379/0?allow_plaintext=yes", "allow_plaintext must be true or false"),
        (
            "redis://cache.internal:6379/0",
            "redis:// sends the password and every ledger entry in clear text: use rediss://, or add "
            "allow_plaintext=true for a server reached over a private network",
        ),
    ],
)
def test_a_bad_ledger_uri_is_refused_naming_the_variable_the_uri_and_the_problem(ledger, problem):
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_LEDGER": ledger})
    # The problem follows the masked URI (a space before "gives", ": " before the others)
    message, shown = caught.value.message, f"RELAY_LEDGER {mask(ledger)!r}"
    assert message.startswith(f"{shown}: {problem}") or message.startswith(f"{shown} {problem}")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "YES", "y", "Y"])
def test_every_spelling_of_a_true_ssl_check_hostname_is_accepted(value):
    # Given host name checks left on, in any of redis-py's spellings of true; Then the ledger URI is accepted
    uri = f"rediss://cache.example:6380/0?ssl_check_hostname={value}"
    assert load_config({"RELAY_LEDGER": uri}).ledger == uri


@pytest.mark.parametrize("value", ["TLSv1_2", "770", "769", "-2", "", "773"])
def test_a_ledger_ssl_min_version_redis_py_cannot_use_or_below_tls_1_2_is_refused_at_cold_start(value):
    # Given a TLS floor redis-py would reject only at the first connection (a name: it reads an integer) or one
    # below TLS 1.2 / When the configuration is loaded / Then it is refused, naming the option and its values
    uri = f"rediss://cache.example:6380/0?ssl_min_version={value}"
    with pytest.raises(ConfigurationError, match=r"ssl_min_version must be 771 \(TLS 1\.2\) or 772 \(TLS 1\.3\)"):
        load_config({"RELAY_LEDGER": uri})


@pytest.mark.parametrize("value", ["771", "772"])
def test_a_ledger_ssl_min_version_of_tls_1_2_or_1_3_is_accepted_and_redis_py_reads_it(value):
    # Given TLS 1.2 or 1.3 as the floor / Then the ledger URI is accepted, and redis-py reads it as that version
    import ssl

    from redis.connection import parse_url

    uri = f"rediss://cache.example:6380/0?ssl_min_version={value}"
    assert load_config({"RELAY_LEDGER": uri}).ledger == uri
    assert ssl.TLSVersion(parse_url(uri)["ssl_min_version"]) >= ssl.TLSVersion.TLSv1_2
