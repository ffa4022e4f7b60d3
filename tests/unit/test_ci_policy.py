"""tests/ci_policy.py: a server or tool the tests cannot reach is an error on CI and a skip elsewhere (no I/O)."""

import pytest
from ci_policy import require, unreachable


@pytest.mark.parametrize("value", ["true", "1", "TRUE", " true ", "woodpecker", "yes"])
def test_on_ci_an_unreachable_server_fails_naming_it_and_its_address(value):
    # Given CI set as CI services set it, and RabbitMQ not answering
    environ = {"CI": value}
    # When the policy decides
    outcome = unreachable("RabbitMQ", "127.0.0.1:5672", False, environ, "started by .ci/run")
    # Then the test fails, and the message says what is missing, where, and how it is started
    assert outcome is not None and outcome.fail is True
    assert outcome.message.startswith("RabbitMQ is not available at 127.0.0.1:5672 (started by .ci/run): with CI=")


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}, {"CI": " False "}, {"CI": "off"}])
def test_elsewhere_an_unreachable_server_skips_and_says_why(environ):
    # Given no CI (or a value that does not mean it), and Redis not answering
    # When the policy decides
    outcome = unreachable("Redis", "127.0.0.1:6379", False, environ)
    # Then the test skips, saying what is missing, where, and that CI would fail it
    assert outcome is not None and outcome.fail is False
    assert outcome.message == "Redis is not available at 127.0.0.1:6379; skipped here, an error with CI=true"


@pytest.mark.parametrize("environ", [{}, {"CI": "true"}])
def test_a_server_that_answers_neither_fails_nor_skips(environ):
    assert unreachable("Redis", "127.0.0.1:6379", True, environ) is None
    assert require("Redis", "127.0.0.1:6379", True, environ=environ) is None


def test_require_fails_on_ci_and_skips_elsewhere():
    # Given a tool that is not installed / When required on CI / Then the test fails (pytest.fail), naming it
    with pytest.raises(pytest.fail.Exception, match=r"^rabbitmqctl is not available at PATH: with CI=1 "):
        require("rabbitmqctl", "PATH", False, environ={"CI": "1"})
    # When required elsewhere / Then it skips (pytest.skip), naming it
    with pytest.raises(pytest.skip.Exception, match=r"^rabbitmqctl is not available at PATH; skipped here"):
        require("rabbitmqctl", "PATH", False, environ={})
