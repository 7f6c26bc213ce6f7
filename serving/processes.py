"""Process-tree facts from /proc (Linux): which processes a flow started, and how much memory they hold."""
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


def resident_bytes(pids: set[int]) -> int:
    """Sum of resident set sizes (VmRSS); processes that ended meanwhile count as zero."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
