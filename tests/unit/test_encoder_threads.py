"""A flow's two encoders share the cores: each model gets half the CPUs unless the flow sets --threads."""
import os

from serving.runtime.executor import encoder_threads


def test_each_encoder_gets_half_the_cpus_this_process_may_use():
    cpus = len(os.sched_getaffinity(0))
    assert encoder_threads() == max(1, cpus // 2)


def test_one_cpu_still_gets_one_thread(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert encoder_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert encoder_threads() == 4
