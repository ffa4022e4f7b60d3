"""Unit tests cannot open sockets: every test here runs with sockets disabled (pytest-socket)."""

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()
