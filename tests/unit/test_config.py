import pytest

from aitask_relay.config import DEFAULT_DESTINATION, load_config
from aitask_relay.errors import ConfigurationError


def test_defaults():
    config = load_config({})
    assert config.ros.region_id == "cn-hangzhou" and config.ros.endpoint is None
    assert config.ros.protocol == "https" and config.destinations == (DEFAULT_DESTINATION,)
    assert config.ros.max_attempts == 3 and config.max_concurrency == 8


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
