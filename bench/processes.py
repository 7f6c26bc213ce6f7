"""Process-tree facts from /proc (Linux): which processes a flow started, and how much memory they hold."""
import contextlib
import os
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """All live descendants of `pid` (a flow's gateway and executors are children of the process that started it)."""
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


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of one process in KiB: growth of anonymous memory is what a leak looks like,
    while file-backed pages (shared libraries, model files) are paged in lazily; empty when the process ended."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    wanted = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "VmHWM:": "peak"}
    fields = (line.split() for line in lines)
    return {wanted[field[0]]: int(field[1]) for field in fields if field and field[0] in wanted}


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on, from its socket descriptors and /proc/net/tcp{,6}: tells flow processes apart."""
    inodes = set()
    try:
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(descriptor)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
