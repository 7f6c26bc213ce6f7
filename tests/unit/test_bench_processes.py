"""The /proc readers the load and pipeline benchmarks use to tell flow processes apart and watch their memory."""
import os
import socket
import subprocess
import sys

from processes import descendants, listening_ports, memory_kib


def test_listening_ports_finds_a_listening_socket_and_not_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port in listening_ports(os.getpid())
    assert port not in listening_ports(os.getpid())


def test_memory_of_this_process_is_split_into_anonymous_and_file_backed():
    kib = memory_kib(os.getpid())
    assert kib["rss"] > 0 and kib["peak"] >= kib["rss"]
    assert abs(kib["anon"] + kib["file"] - kib["rss"]) <= kib["rss"] * 0.05  # RssShmem is the small rest


def test_an_ended_process_reports_nothing():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert memory_kib(child.pid) == {} and listening_ports(child.pid) == set()
