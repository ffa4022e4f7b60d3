import socket

import pytest
from pytest_socket import SocketBlockedError


def test_unit_tests_cannot_open_a_socket():
    # Given the unit-test guard
    # When a test tries to open a socket
    # Then it is refused, so no unit test can depend on a server by accident
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
