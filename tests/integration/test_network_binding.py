"""Every process of both flows listens on loopback only, unless the user asks for another gateway host.

The flows looked at are the run's shared ones (tests/conftest.py): the query server (`app.py -t query-restful`)
and the index flow of the indexing-job tests, each a subprocess leading its own session.
"""
import re
import subprocess

import pytest
from processes import descendants


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
def test_flow_listens_on_loopback_only(kind, request):
    flow = request.getfixturevalue("job_index_flow" if kind == "index" else "query_server")
    addresses = listening_addresses(descendants(flow.pid) | {flow.pid})
    assert len(addresses) >= 5, addresses  # gateway + 4 executors
    assert any(address.endswith(f"127.0.0.1]:{flow.port}") or address == f"127.0.0.1:{flow.port}"
               for address in addresses), addresses  # the gateway is among them
    assert all(re.match(r"^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):\d+$", address) for address in addresses), addresses
