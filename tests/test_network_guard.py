import socket
import urllib.request

import pytest

from tests.network_guard import NetworkAccessInTest


def test_reaching_a_remote_host_fails_loudly():
    with pytest.raises(NetworkAccessInTest, match="tests must use scripted fake chat models"):
        urllib.request.urlopen("https://example.com", timeout=1)


def test_connecting_to_a_remote_address_fails_loudly():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAccessInTest):
            sock.connect(("93.184.216.34", 443))
    finally:
        sock.close()


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        connection, _ = server.accept()
        connection.close()
    finally:
        client.close()
        server.close()
