"""Every process of both flows listens on loopback only, unless the user asks for another gateway host."""
import os
import re
import subprocess

import pytest
from jina.helper import random_port
from processes import descendants

from serving.runtime.flows import FlowSettings, load_flow, running


def listening_addresses(pids: set[int]) -> list[str]:
    """Listening TCP sockets of these processes, from `ss` (iproute2, present on Debian by default)."""
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    addresses = []
    for line in output.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            addresses.append(line.split()[3])
    return addresses


@pytest.mark.parametrize("kind", ["index", "query"])
def test_flow_listens_on_loopback_only(kind, tmp_path):
    with running(load_flow(kind, FlowSettings(workspace=tmp_path, port=random_port()))):
        addresses = listening_addresses(descendants(os.getpid()) | {os.getpid()})
    assert len(addresses) >= 6, addresses  # gateway + 4 executors + merger
    assert all(re.match(r"^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):\d+$", address) for address in addresses), addresses
