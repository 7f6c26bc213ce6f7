"""Which endpoints run on an executor's event loop and which in Jina's thread pool (CrossModalExecutor's docstring).

Queries are short and on the latency path: their endpoints are coroutines (no thread handoff per request). Indexing
batches and photo decoding take long: their endpoints are plain functions, so the loop stays free while they run.
"""
import inspect

import pytest

from img_emb.executor import ImageEncoder
from pods.indexer import Indexer
from txt_emb.executor import TextEncoder

QUERY_ENDPOINTS = [(Indexer, "/search"), (Indexer, "/encode"), (TextEncoder, "/search"), (TextEncoder, "/encode")]
LONG_ENDPOINTS = [(Indexer, "/index"), (Indexer, "/delete"), (TextEncoder, "/index"), (ImageEncoder, "/index"),
                  (ImageEncoder, "/search")]


def _endpoint(executor: type, endpoint: str):
    return executor.requests_by_class[executor.__name__][endpoint].fn


@pytest.mark.parametrize(("executor", "endpoint"), QUERY_ENDPOINTS)
def test_query_endpoints_run_on_the_event_loop(executor, endpoint):
    assert inspect.iscoroutinefunction(_endpoint(executor, endpoint))


@pytest.mark.parametrize(("executor", "endpoint"), LONG_ENDPOINTS)
def test_long_endpoints_run_in_the_thread_pool(executor, endpoint):
    assert not inspect.iscoroutinefunction(_endpoint(executor, endpoint))
