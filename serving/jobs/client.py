"""A small client of the gateway's JSON API, used by `app.py -t query` and `-t evaluate`."""
from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

BATCH_SIZE = 32  # the gateway's limit on queries per request (`POST /search/batch`)


class SearchError(RuntimeError):
    """The gateway refused or failed a query; the message carries its answer."""


def text_query(text: str, limit: int = 10, mode: str = "semantic") -> dict:
    """A query of the evaluation protocol: semantic ranking, every photo ranked (no near-duplicate folded)."""
    return {"text": text, "limit": limit, "mode": mode, "collapse_duplicates": False}


def image_query(path: str | Path, limit: int = 10) -> dict:
    return {"image": _base64_file(path), "limit": limit, "mode": "semantic"}


def composed_query(texts: Sequence[str], images: Sequence[str | Path], not_texts: Sequence[str] = (),
                   not_images: Sequence[str | Path] = (), limit: int = 10, mode: str = "hybrid",
                   options: Mapping[str, Any] | None = None) -> dict:
    """A `POST /search` body: the first text (else the first photo) is the query, the others are `plus` parts,
    the `not_` ones `minus` parts; `options` adds the other fields that are not None (filters, `sort`, `offset`;
    the defaults "relevance" and 0 are left out)."""
    parts = [{"text": text} for text in texts] + [{"image": _base64_file(path)} for path in images]
    if not parts:
        raise ValueError("a query needs a text or a photo")
    minus = [{"text": text} for text in not_texts] + [{"image": _base64_file(path)} for path in not_images]
    body: dict = {**parts[0], "limit": limit, "mode": mode}
    if parts[1:]:
        body["plus"] = parts[1:]
    if minus:
        body["minus"] = minus
    defaults = {"sort": "relevance", "offset": 0, "collapse_duplicates": True}
    body.update({key: value for key, value in (options or {}).items()
                 if value is not None and defaults.get(key, object()) != value})
    return body


def _base64_file(path: str | Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


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

    def search(self, body: dict) -> dict:
        """The gateway's answer to one `POST /search` body."""
        return self._post("/search", body)

    def search_many(self, queries: Iterable[dict]) -> Iterator[dict]:
        """The answer to each query (`text_query` / `image_query` bodies), in order, `BATCH_SIZE` per request.

        Lazy: a query body (a photo's base64) is built only when its batch is sent.
        """
        bodies = iter(queries)
        while batch := list(itertools.islice(bodies, BATCH_SIZE)):
            yield from self._post("/search/batch", {"queries": batch})["results"]

    def _post(self, route: str, body: dict) -> dict:
        response = self.http.post(route, json=body)
        if response.status_code != 200:
            raise SearchError(f"search failed ({response.status_code}): {response.text[:500]}")
        return response.json()

    def close(self) -> None:
        self.http.close()
