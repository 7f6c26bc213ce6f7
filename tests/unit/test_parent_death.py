"""A forked child gets SIGTERM when its parent is SIGKILLed, once the hook is registered, and not otherwise."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PARENT = """
import os, sys, time
sys.path.insert(0, {root!r})
if {register}:
    from serving.runtime.parent_death import stop_forked_processes_with_their_parent
    stop_forked_processes_with_their_parent()
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Running, that is: not gone and not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def child_after_parent_is_killed(register: bool) -> bool:
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(root=str(REPO_ROOT), register=register)],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        return alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_forked_child_ends_with_its_killed_parent():
    assert not child_after_parent_is_killed(register=True)


def test_without_the_hook_the_child_outlives_its_parent():
    assert child_after_parent_is_killed(register=False)
