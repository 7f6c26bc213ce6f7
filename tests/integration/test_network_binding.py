"""Every process of both flows listens on loopback only, unless the user asks for another gateway host."""
import os
import re
import subprocess
from pathlib import Path

import pytest
from jina.helper import random_port

from serving.flows import FlowSettings, load_flow, running

def descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


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
