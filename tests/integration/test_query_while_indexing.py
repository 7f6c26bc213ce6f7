"""A running query flow keeps answering while an index flow adds documents to the same workspace, and sees them."""
import threading

import httpx
from jina.helper import random_port

from crossmodal.store import stored_ids
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running


def test_queries_are_answered_during_indexing_and_see_new_photos(tmp_path):
    reader = open_dataset("demo", workspace=tmp_path)
    with running(load_flow("index", FlowSettings(workspace=tmp_path))) as flow:
        index_dataset(flow, reader, tmp_path, batch_size=2, num_docs=4)
    port = random_port()
    statuses, seen_counts = [], []
    stop = threading.Event()

    def query_continuously() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            while not stop.is_set():
                response = http.post("/search", json={"text": "a photo", "limit": 100})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    seen_counts.append(len(response.json()["matches"]))

    with running(load_flow("query", FlowSettings(workspace=tmp_path, port=port))):
        querying = threading.Thread(target=query_continuously)
        querying.start()
        try:
            with running(load_flow("index", FlowSettings(workspace=tmp_path))) as flow:
                index_dataset(flow, open_dataset("demo", workspace=tmp_path), tmp_path, batch_size=2)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                final = http.post("/search", json={"text": "a photo", "limit": 100}).json()["matches"]
        finally:
            stop.set()
            querying.join(timeout=60)

    assert len(stored_ids(tmp_path / "image_index")) == 19
    assert len(statuses) >= 5 and set(statuses) == {200}, statuses
    assert seen_counts[0] >= 4 and max(seen_counts) <= 19
    assert seen_counts == sorted(seen_counts)  # the collection only grows, never shows a torn state
    assert len(final) == 19
