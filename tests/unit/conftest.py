"""Unit tests cannot open sockets: every test here runs with sockets disabled (pytest-socket)."""

import pytest
import urllib3  # noqa: F401 - probes IPv6 with a socket when first imported; do it before sockets are blocked
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()
