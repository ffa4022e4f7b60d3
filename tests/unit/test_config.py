import pytest

from aitask_relay.config import load_config
from aitask_relay.core.errors import ConfigurationError
from aitask_relay.core.settings import DESTINATIONS


def test_defaults():
    config = load_config({})
    assert config.ros.region_id == "cn-hangzhou" and config.ros.endpoint is None
    assert config.ros.protocol == "https" and config.destinations == (DESTINATIONS.default,)
    assert config.ros.max_attempts == 3 and config.max_concurrency == 32


def test_a_full_configuration():
    config = load_config(
        {
            "ALIBABA_CLOUD_REGION_ID": "cn-shanghai",
            "ROS_ENDPOINT": "127.0.0.1:8790",
            "ROS_PROTOCOL": "HTTP",
            "RELAY_DESTINATIONS": " file:///tmp/a , file:///tmp/b ",
            "RELAY_MAX_CONCURRENCY": "16",
            "ROS_READ_TIMEOUT_MS": "2000",
        }
    )
    assert config.ros.endpoint == "127.0.0.1:8790" and config.ros.protocol == "http"
    assert config.destinations == ("file:///tmp/a", "file:///tmp/b")
    assert config.max_concurrency == 16 and config.ros.read_timeout_ms == 2000


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ROS_PROTOCOL": "ftp"}, "ROS_PROTOCOL='ftp' is not one of https, http"),
        ({"ROS_PROTOCOL": "http"}, "ROS_PROTOCOL=http is allowed only with a loopback ROS_ENDPOINT"),
        ({"ROS_PROTOCOL": "http", "ROS_ENDPOINT": "ros.aliyuncs.com"}, "not 'ros.aliyuncs.com'"),
        ({"ROS_PROTOCOL": "http", "ROS_ENDPOINT": "10.0.0.1:80"}, "loopback"),
        ({"ROS_ENDPOINT": "https://ros.aliyuncs.com"}, "ROS_ENDPOINT 'https://ros.aliyuncs.com' is not host[:port]"),
        ({"ROS_ENDPOINT": "host:notaport"}, "ROS_ENDPOINT 'host:notaport' is not host[:port]"),
        ({"RELAY_MAX_CONCURRENCY": "many"}, "RELAY_MAX_CONCURRENCY='many' is not an integer"),
        ({"RELAY_MAX_CONCURRENCY": "0"}, "RELAY_MAX_CONCURRENCY=0 is out of range"),
        ({"ROS_MAX_ATTEMPTS": "99"}, "ROS_MAX_ATTEMPTS=99 is out of range"),
        ({"RELAY_DESTINATIONS": " , "}, "RELAY_DESTINATIONS names no destination"),
        ({"RELAY_DESTINATIONS": "ftp://x/y"}, "RELAY_DESTINATIONS entry 'ftp://x/y': unknown scheme"),
        ({"RELAY_DESTINATIONS": "file://relative/dir"}, "RELAY_DESTINATIONS entry 'file://relative/dir'"),
        ({"RELAY_DESTINATIONS": "file:///ok,file:///x?y=1"}, "RELAY_DESTINATIONS entry 'file:///x?y=1'"),
        ({"RELAY_TRACKING_QUEUE": "track.fifo"}, "RELAY_TRACKING_QUEUE 'track.fifo': must be a standard queue"),
        (
            {"RELAY_FAILURE_QUEUE": "https://sqs.eu-west-1.amazonaws.com/123456789012/f.fifo"},
            "RELAY_FAILURE_QUEUE 'https://sqs.eu-west-1.amazonaws.com/123456789012/f.fifo': must be a standard queue",
        ),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(env, fragment):
    with pytest.raises(ConfigurationError) as caught:
        load_config(env)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("endpoint", ["127.0.0.1:1", "localhost:8790", "[::1]:8790", "127.9.9.9"])
def test_http_is_allowed_for_loopback_endpoints(endpoint):
    assert load_config({"ROS_PROTOCOL": "http", "ROS_ENDPOINT": endpoint}).ros.protocol == "http"


def test_the_sweep_safety_margin_is_derived_from_the_ros_settings():
    # Given the defaults / Then the margin covers one task at its worst (2 calls x 3 attempts x 15 s +
    # 2 x 2 backoffs of 5 s) plus the 3 s reserve
    assert load_config({}).sweep.safety_ms == 113_000
    # and it follows the ROS settings: 2 x (1 attempt x (1 s + 2 s)) + 3 s
    small = {"ROS_MAX_ATTEMPTS": "1", "ROS_CONNECT_TIMEOUT_MS": "1000", "ROS_READ_TIMEOUT_MS": "2000"}
    assert load_config(small).sweep.safety_ms == 9_000
    assert load_config(small | {"RELAY_SWEEP_SAFETY_MS": "20000"}).sweep.safety_ms == 20_000


def test_a_sweep_safety_margin_below_one_tasks_worst_case_is_refused():
    with pytest.raises(ConfigurationError, match=r"RELAY_SWEEP_SAFETY_MS=10000 is below .* \(113000 ms"):
        load_config({"RELAY_SWEEP_SAFETY_MS": "10000"})


def test_a_first_tracking_delay_of_zero_is_accepted_and_means_the_minimum():
    assert load_config({"RELAY_TRACKING_FIRST_DELAY_SECONDS": "0"}).tracking_first_delay_seconds == 0


def test_the_sweep_catch_up_maximum_defaults_to_a_day_or_the_lookback_and_is_never_below_it():
    # An older configuration with a 2-day lookback and no maximum stays valid: the maximum follows it
    assert load_config({}).sweep.max_catch_up_seconds == 86400
    assert load_config({"RELAY_SWEEP_LOOKBACK_SECONDS": "172800"}).sweep.max_catch_up_seconds == 172800
    assert load_config({"RELAY_TRACKING_DEADLINE_SECONDS": "7200"}).sweep.horizon_seconds == 7200
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_SWEEP_LOOKBACK_SECONDS": "7200", "RELAY_SWEEP_MAX_CATCH_UP_SECONDS": "3600"})
    assert "RELAY_SWEEP_MAX_CATCH_UP_SECONDS" in caught.value.message


def test_the_create_grace_period_has_a_default_and_is_validated_at_cold_start():
    # Given no setting, a valid one and out-of-range ones / Then 120 s, the value, and errors naming it
    assert load_config({}).create_grace_seconds == 120
    assert load_config({"RELAY_CREATE_GRACE_SECONDS": "30"}).create_grace_seconds == 30
    for bad in ("-1", "soon", "100000"):
        with pytest.raises(ConfigurationError, match="RELAY_CREATE_GRACE_SECONDS"):
            load_config({"RELAY_CREATE_GRACE_SECONDS": bad})


# Each bounded integer setting: its variable, where load_config puts it, its default and its range. The bounds
# are the documented ones (docs/configuration.md, template.yaml); each variable is read from its own name.
BOUNDED = [
    ("RELAY_MAX_CONCURRENCY", lambda c: c.max_concurrency, 32, 1, 64, {}),
    ("ROS_CONNECT_TIMEOUT_MS", lambda c: c.ros.connect_timeout_ms, 5000, 100, 60000, {}),
    ("ROS_READ_TIMEOUT_MS", lambda c: c.ros.read_timeout_ms, 10000, 100, 300000, {}),
    ("ROS_MAX_ATTEMPTS", lambda c: c.ros.max_attempts, 3, 1, 10, {}),
    ("RELAY_TRACKING_DEADLINE_SECONDS", lambda c: c.tracking_deadline_seconds, 86400, 60, 14 * 86400, {}),
    ("RELAY_SWEEP_LOOKBACK_SECONDS", lambda c: c.sweep.lookback_seconds, 3600, 60, 30 * 86400, {}),
    # The catch-up maximum is never below the lookback: its low bound is tried with the shortest lookback
    (
        "RELAY_SWEEP_MAX_CATCH_UP_SECONDS",
        lambda c: c.sweep.max_catch_up_seconds,
        86400,
        60,
        30 * 86400,
        {"RELAY_SWEEP_LOOKBACK_SECONDS": "60"},
    ),
    ("RELAY_LEDGER_EXPIRY_SECONDS", lambda c: c.ledger_expiry_seconds, 7 * 86400, 60, 366 * 86400, {}),
    ("RELAY_LEDGER_LEASE_SECONDS", lambda c: c.ledger_lease_seconds, 120, 5, 3600, {}),
    ("RELAY_TRACKING_FIRST_DELAY_SECONDS", lambda c: c.tracking_first_delay_seconds, 3, 0, 900, {}),
    ("RELAY_TRACKING_LAG_PERCENT", lambda c: c.tracking_lag_percent, 12, 1, 100, {}),
    ("RELAY_CREATE_GRACE_SECONDS", lambda c: c.create_grace_seconds, 120, 0, 3600, {}),
    ("RELAY_SWEEP_PAGE_SIZE", lambda c: c.sweep.page_size, 50, 1, 100, {}),
]


@pytest.mark.parametrize(("variable", "field", "default", "low", "high", "beside"), BOUNDED)
def test_each_bounded_setting_has_its_default_and_accepts_exactly_its_range(
    variable, field, default, low, high, beside
):
    # Given the variable unset / Then the default
    assert field(load_config({})) == default
    # Given each bound / Then the value is taken, from this variable, as given
    for value in (low, high):
        assert field(load_config(beside | {variable: str(value)})) == value
    # Given one past each bound / Then the cold start fails naming the variable, the value and the range
    for value in (low - 1, high + 1):
        with pytest.raises(ConfigurationError) as caught:
            load_config(beside | {variable: str(value)})
        assert caught.value.message == f"{variable}={value} is out of range ({low}..{high})"


def test_the_sweep_safety_margin_goes_from_one_tasks_worst_case_to_an_hour():
    # Given the defaults (113 s worst case): the worst case and an hour are taken
    for value in (113_000, 3_600_000):
        assert load_config({"RELAY_SWEEP_SAFETY_MS": str(value)}).sweep.safety_ms == value
    # Given less, even 0 (in range) / Then the error says why it is too small, not that it is out of range
    for value in (0, 112_999):
        with pytest.raises(ConfigurationError, match=rf"^RELAY_SWEEP_SAFETY_MS={value} is below the worst case"):
            load_config({"RELAY_SWEEP_SAFETY_MS": str(value)})
    # Given more than an hour / Then it is out of range
    with pytest.raises(ConfigurationError, match=r"^RELAY_SWEEP_SAFETY_MS=3600001 is out of range \(0\.\.3600000\)$"):
        load_config({"RELAY_SWEEP_SAFETY_MS": "3600001"})


def test_the_other_settings_land_where_they_are_read():
    # Given the region, the credentials secret and the tracking deadline
    config = load_config(
        {
            "ALIBABA_CLOUD_REGION_ID": "cn-shanghai",
            "ALIBABA_CLOUD_CREDENTIALS_SECRET": "relay/access-key",
            "RELAY_TRACKING_DEADLINE_SECONDS": "7200",
        }
    )
    # Then each is in its field, and the sweep's horizon is the tracking deadline
    assert config.ros.region_id == "cn-shanghai" and config.credentials_secret == "relay/access-key"
    assert config.tracking_deadline_seconds == 7200 and config.sweep.horizon_seconds == 7200
    assert load_config({}).credentials_secret is None


@pytest.mark.parametrize(("concurrency", "idle"), [("1", 4), ("4", 4), ("5", 5), ("16", 16)])
def test_the_ros_client_keeps_an_idle_connection_per_concurrent_task_and_at_least_four(concurrency, idle):
    assert load_config({"RELAY_MAX_CONCURRENCY": concurrency}).ros.max_idle_conns == idle


def test_one_more_task_needs_one_attempt_of_each_call_plus_the_reserve():
    # Given the defaults: 2 ROS calls (look, output) x 1 attempt x (5 s connect + 10 s read), and the 3 s reserve
    # (whatever ROS_MAX_ATTEMPTS says: later attempts run only while time allows)
    assert load_config({}).ros.task_minimum_ms() == 2 * 15_000 + 3_000
    assert load_config({"ROS_MAX_ATTEMPTS": "10"}).ros.task_minimum_ms() == 33_000


@pytest.mark.parametrize("endpoint", ["@ros.example:443", "ros.example:443?x=1", "ros.example:443/path"])
def test_a_ros_endpoint_with_userinfo_a_query_or_a_path_is_refused(endpoint):
    # Given an endpoint that is more than host[:port] (an empty userinfo still has its '@')
    with pytest.raises(ConfigurationError) as caught:
        load_config({"ROS_ENDPOINT": endpoint})
    # Then it is refused by name
    assert caught.value.message.startswith("ROS_ENDPOINT '") and "is not host[:port] (no scheme, no path)" in str(
        caught.value
    )


def test_plain_http_to_ros_errors_say_why_and_how_to_allow_it():
    # Given http with no endpoint / Then the error starts with the variable
    with pytest.raises(ConfigurationError, match=r"^ROS_PROTOCOL=http is allowed only with a loopback ROS_ENDPOINT$"):
        load_config({"ROS_PROTOCOL": "http"})
    # Given http to a remote endpoint / Then the error says what would cross the network and the override
    with pytest.raises(ConfigurationError) as caught:
        load_config({"ROS_PROTOCOL": "http", "ROS_ENDPOINT": "ros.internal.example"})
    assert (
        "'ros.internal.example': credentials-signed requests must not cross a network in clear text "
        "(ROS_ALLOW_PLAINTEXT=true overrides this for a private network)" in caught.value.message
    )


def test_destination_list_errors_start_with_the_variable_and_say_how_to_fix_them():
    with pytest.raises(ConfigurationError, match=r"^RELAY_DESTINATIONS names no destination$"):
        load_config({"RELAY_DESTINATIONS": " , "})
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_DESTINATIONS": "amqps://relay:a,b@mq.example/vh?routing_key=q"})
    assert "the entries are split at commas, so a comma inside a URI (in a password, say) must be written %2C" in (
        caught.value.message
    )


def test_settings_wrong_together_are_refused_naming_the_variable_first():
    with pytest.raises(ConfigurationError, match=r"^RELAY_SWEEP_MODE=fanout needs RELAY_TRACKING_QUEUE: fan-out"):
        load_config({"RELAY_SWEEP_MODE": "fanout"})
    with pytest.raises(ConfigurationError, match=r"^RELAY_TRACKING_QUEUE 'out' is also in RELAY_DESTINATIONS"):
        load_config({"RELAY_DESTINATIONS": "sqs://out", "RELAY_TRACKING_QUEUE": "out"})


@pytest.mark.parametrize(
    ("queue", "problem"),
    [
        # The problem is all of the destination check's, even when it holds ": " itself
        ("sqs://track?x=1", "unknown query parameter 'x' (accepted: none)"),
        # A FIFO queue is refused with or without a trailing slash
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/track.fifo/",
            "must be a standard queue (a FIFO queue cannot delay single messages and needs a message group)",
        ),
    ],
)
def test_a_bad_tracking_queue_is_refused_with_the_whole_problem(queue, problem):
    with pytest.raises(ConfigurationError) as caught:
        load_config({"RELAY_TRACKING_QUEUE": queue})
    assert caught.value.message == f"RELAY_TRACKING_QUEUE {queue!r}: {problem}"


def test_the_report_stage_is_off_unless_asked_for():
    # Given no RELAY_REPORT, and RELAY_REPORT=none / Then no part is asked (today's behaviour and cost)
    assert load_config({}).report == () and load_config({"RELAY_REPORT": " None "}).report == ()


def test_the_report_parts_are_read_in_one_order_whatever_the_order_given():
    # Given parts in any order and case, with spaces / Then they are the known parts, in validate..policy order
    assert load_config({"RELAY_REPORT": "policy, COST,validate"}).report == ("validate", "cost", "policy")


@pytest.mark.parametrize("value", ["validate,bogus", "none,cost", "cost,cost", ",", "all"])
def test_a_report_setting_that_is_not_a_subset_of_the_parts_is_refused(value):
    # Given an unknown part, none beside a part, a part twice, or nothing / Then the variable is named
    with pytest.raises(ConfigurationError, match=r"^RELAY_REPORT="):
        load_config({"RELAY_REPORT": value})


@pytest.mark.parametrize(
    "region", ["attacker.net:443/?", "cn-hangzhou.evil", "CN-HANGZHOU", "cn_hangzhou", "-x", "a" * 65]
)
def test_a_region_that_is_not_a_region_id_is_refused_naming_the_variable(region):
    # The SDK builds its endpoint host from the region (ros.<region>.aliyuncs.com): nothing else may get in
    with pytest.raises(ConfigurationError, match=r"ALIBABA_CLOUD_REGION_ID=.* is not a region id"):
        load_config({"ALIBABA_CLOUD_REGION_ID": region})


def test_region_ids_as_alibaba_cloud_names_them_are_accepted():
    for region in ("cn-hangzhou", "ap-southeast-1", "cn-shanghai-finance-1", "us-west-1"):
        assert load_config({"ALIBABA_CLOUD_REGION_ID": f" {region} "}).ros.region_id == region
