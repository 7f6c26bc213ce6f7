"""The test harness's ports: below the kernel's ephemeral range, a block per lane for the gateways the tests start
and one for the ports Jina picks inside their flows (tests/servers.py)."""
import json
import os
import socket
import subprocess
import sys
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
    assert max(ports) < servers.ephemeral_port_floor()


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


def test_the_flows_jina_starts_pick_their_ports_from_this_lanes_block():
    """tests/conftest.py confined them before any test ran; a flow subprocess inherits it and Jina honours it."""
    first = servers.FIRST_JINA_PORT + servers.port_lane() * servers.LANE_PORT_BLOCK
    block = range(first, first + servers.LANE_PORT_BLOCK)
    code = "import json\nfrom jina.helper import random_port\nprint(json.dumps([random_port() for _ in range(200)]))"
    picked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=os.environ | {"JINA_OPTOUT_TELEMETRY": "1"})
    ports = json.loads(picked.stdout.strip().splitlines()[-1])
    assert len(set(ports)) == 200 and all(port in block for port in ports), ports[:10]
    assert servers.FIRST_TEST_PORT - servers.FIRST_JINA_PORT >= 4 * servers.LANE_PORT_BLOCK  # never a gateway's block
