"""A running query server keeps answering while an index flow adds documents to the same workspace, and sees them.

Both flows are subprocesses (tests/servers.py); the indexing job runs here, in the test process, so the test knows
when each batch was committed. A thread queries without pause and records, for every query, when it ran, how many
photos were stored (committed to SQLite) just before it was sent and just after it was answered, and how many it
returned. Between two batches the job waits until a query sent after the previous batch has been answered, so
every state the index passes through is seen by at least one query while the run is under way.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from crossmodal.index import stored_ids
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from tests.servers import start_index_flow, start_query_server

FIRST, BATCH, TOTAL = 4, 3, 19


@dataclass
class Query:
    sent: float
    answered: float
    status: int
    stored_before: int  # photos committed just before the query was sent
    stored_after: int  # and just after it was answered
    seen: int  # photos it returned (it asks for all of them)


class PacedReader:
    """The demo dataset, read by `index_dataset` batch by batch; before it hands over the first photo of a batch
    (the previous batch has been posted and committed by then), it waits until a query sent after that moment has
    been answered."""

    def __init__(self, reader, queries: list[Query], batch_size: int) -> None:
        self.reader, self.queries, self.batch_size = reader, queries, batch_size
        self.batch_starts: list[float] = []

    def __iter__(self):
        for number, pair in enumerate(self.reader):
            if number % self.batch_size == 0:
                now = time.monotonic()
                self.batch_starts.append(now)
                if number:
                    self.wait_for_a_query_sent_after(now)
            yield pair

    def wait_for_a_query_sent_after(self, moment: float) -> None:
        deadline = moment + 60
        while not any(query.sent > moment for query in list(self.queries)):
            assert time.monotonic() < deadline, "no query was answered between two batches"
            time.sleep(0.01)

    @property
    def skipped(self):
        return self.reader.skipped


@pytest.mark.slow
def test_queries_are_answered_during_indexing_and_see_new_photos(tmp_path):
    workspace = tmp_path / "workspace"
    images = workspace / "image_index"
    index_flow = start_index_flow(workspace, tmp_path / "index.log")
    try:
        flow = index_flow.client()
        first = index_dataset(flow, open_dataset("demo", workspace=workspace), workspace, batch_size=2, num_docs=FIRST)
        assert first.images == FIRST
        server = start_query_server(workspace, tmp_path / "server.log")
        try:
            queries: list[Query] = []
            stop = threading.Event()

            def query_continuously() -> None:
                with httpx.Client(base_url=server.url, timeout=60) as http:
                    while not stop.is_set():
                        before, sent = len(stored_ids(images)), time.monotonic()
                        response = http.post("/search", json={"text": "a photo", "limit": 100})
                        answered, after = time.monotonic(), len(stored_ids(images))
                        seen = len(response.json()["matches"]) if response.status_code == 200 else -1
                        queries.append(Query(sent, answered, response.status_code, before, after, seen))

            querying = threading.Thread(target=query_continuously, daemon=True)
            querying.start()
            try:
                reader = PacedReader(open_dataset("demo", workspace=workspace), queries, BATCH)
                started = time.monotonic()
                summary = index_dataset(flow, reader, workspace, batch_size=BATCH)
                finished = time.monotonic()
                time.sleep(0.5)  # a few queries after the run
            finally:
                stop.set()
                querying.join(timeout=60)
            with httpx.Client(base_url=server.url, timeout=60) as http:
                final = http.post("/search", json={"text": "a photo", "limit": 100}).json()["matches"]
        finally:
            server.stop()
    finally:
        index_flow.stop()

    assert (summary.images, summary.already_indexed) == (TOTAL - FIRST, FIRST)
    assert len(stored_ids(images)) == TOTAL and len(final) == TOTAL
    assert queries and {query.status for query in queries} == {200}, [query.status for query in queries]
    # Every query saw what was committed: no less than before it was sent, no more than after it was answered.
    assert all(query.stored_before <= query.seen <= query.stored_after for query in queries), queries
    seen = [query.seen for query in queries]
    assert seen == sorted(seen), seen  # the collection only grows, never shows a torn state
    # Queries ran while the run was under way, and saw each batch the moment it was committed.
    during = [query for query in queries if started < query.sent and query.answered < finished]
    # The reader's batches of 3 include the 4 photos stored already: committed states 6, 9, 12, 15, 18, then 19.
    intermediate = {count for count in range(BATCH, TOTAL, BATCH) if count > FIRST}
    assert len(reader.batch_starts) == -(-TOTAL // BATCH)
    assert intermediate <= {query.seen for query in during}, sorted({query.seen for query in during})
    assert any(query.seen == TOTAL for query in queries if query.sent > finished)
