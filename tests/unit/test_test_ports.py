"""The test harness's gateway ports: outside the ranges the kernel and Jina pick from, one block per lane."""
import socket
from contextlib import ExitStack

import pytest

from tests import servers


def test_ports_come_from_the_lanes_block_below_the_ephemeral_range_and_never_twice(monkeypatch):
    monkeypatch.setenv("TEST_PORT_LANE", "2")
    monkeypatch.setattr(servers, "_handed_out", set())
    first = servers.FIRST_TEST_PORT + 2 * servers.LANE_PORT_BLOCK
    ports = [servers.free_port() for _ in range(40)]
    assert len(set(ports)) == len(ports)
    assert all(first <= port < first + servers.LANE_PORT_BLOCK for port in ports)
    assert max(ports) < servers.ephemeral_port_floor() <= 49153  # 49153: the lowest port Jina picks


def test_a_bound_port_is_skipped_and_an_exhausted_block_says_so(monkeypatch):
    monkeypatch.setenv("TEST_PORT_LANE", "0")
    monkeypatch.setattr(servers, "_handed_out", set())
    monkeypatch.setattr(servers, "FIRST_TEST_PORT", 31000)
    monkeypatch.setattr(servers, "LANE_PORT_BLOCK", 4)
    with ExitStack() as stack:
        for port in (31000, 31001, 31003):
            listener = stack.enter_context(socket.socket())
            listener.bind(("127.0.0.1", port))
            listener.listen()
        assert servers.free_port() == 31002
        with pytest.raises(RuntimeError, match="no free port in 31000-31003 for test lane 0"):
            servers.free_port()
