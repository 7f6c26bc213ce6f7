"""A small client of the gateway's JSON API, used by `app.py -t query` and `-t evaluate`."""
from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

BATCH_SIZE = 32  # the gateway's limit on queries per request (`POST /search/batch`)


class SearchError(RuntimeError):
    """The gateway refused or failed a query; the message carries its answer."""


def text_query(text: str, limit: int = 10) -> dict:
    return {"text": text, "limit": limit}


def image_query(path: str | Path, limit: int = 10) -> dict:
    return {"image": base64.b64encode(Path(path).read_bytes()).decode("ascii"), "limit": limit}


class SearchClient:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def wait_until_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {self.http.base_url} after {seconds:.0f} s")
            time.sleep(0.2)

    def search_text(self, text: str, limit: int = 10) -> list[dict]:
        return self._post("/search", text_query(text, limit))["matches"]

    def search_image(self, path: str | Path, limit: int = 10) -> list[dict]:
        return self._post("/search", image_query(path, limit))["matches"]

    def search_many(self, queries: Iterable[dict]) -> Iterator[list[dict]]:
        """The matches of each query (`text_query` / `image_query` bodies), in order, `BATCH_SIZE` per request.

        Lazy: a query body (a photo's base64) is built only when its batch is sent.
        """
        bodies = iter(queries)
        while batch := list(itertools.islice(bodies, BATCH_SIZE)):
            for result in self._post("/search/batch", {"queries": batch})["results"]:
                yield result["matches"]

    def _post(self, route: str, body: dict) -> dict:
        response = self.http.post(route, json=body)
        if response.status_code != 200:
            raise SearchError(f"search failed ({response.status_code}): {response.text[:500]}")
        return response.json()

    def close(self) -> None:
        self.http.close()
