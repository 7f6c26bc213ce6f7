"""An encoder's model threads when the flow does not set them (--threads): the index flow's two encoders, busy at
once, share the cores (half each); the query flow's, used one at a time, may each use all of them."""
import os
from pathlib import Path

import pytest
import yaml

from img_emb.executor import ImageEncoder
from serving.runtime.executor import CrossModalExecutor, encoder_backend, encoder_threads
from txt_emb.executor import TextEncoder

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def test_each_encoder_gets_half_the_cpus_this_process_may_use_by_default():
    cpus = len(os.sched_getaffinity(0))
    assert encoder_threads() == max(1, cpus // 2)
    assert encoder_threads(1.0) == cpus


def test_one_cpu_still_gets_one_thread(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert encoder_threads() == 1 and encoder_threads(1.0) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert encoder_threads() == 4 and encoder_threads(1.0) == 8 and encoder_threads(0.25) == 2


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match="cpu_share"):
        encoder_backend("offline", None, "text", share)


def test_the_query_flow_gives_its_encoders_every_cpu_and_the_index_flow_half():
    def encoder_shares(flow: str) -> dict[str, float]:
        executors = yaml.safe_load((FLOWS / flow).read_text())["executors"]
        return {executor["name"]: executor.get("uses_with", {}).get("cpu_share", 0.5) for executor in executors
                if executor["name"].endswith("_encoder")}

    assert encoder_shares("query.yml") == {"text_encoder": 1.0, "image_encoder": 1.0}
    assert encoder_shares("index.yml") == {"text_encoder": 0.5, "image_encoder": 0.5}


def test_the_share_sets_the_models_threads_unless_the_options_do(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert encoder_backend("offline", None, "text", 1.0).threads == 4
    assert encoder_backend("offline", None, "text").threads == 2
    assert encoder_backend("offline", {"threads": 3}, "text", 1.0).threads == 3


def test_replicas_on_this_machine_split_the_share(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert [encoder_threads(1.0, replicas) for replicas in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert encoder_threads(0.5, 2) == 2


@pytest.mark.parametrize("encoder", [TextEncoder, ImageEncoder])
def test_an_encoder_with_replicas_in_its_flow_takes_its_part_of_the_cpus(monkeypatch, encoder):
    """`--replicas 2` on one machine: two copies of each encoder busy at once under load, one core each of two;
    started alone (a container of the exports: no `replicas` in its runtime arguments) it takes them all."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    replica = encoder(model="offline", cpu_share=1.0, runtime_args={"name": "encoder", "replicas": 2})
    assert (replica.local_replicas, replica.backend.threads) == (2, 2)
    assert CrossModalExecutor().local_replicas == 1  # alone: the runtime gives no replicas
