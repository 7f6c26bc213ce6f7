"""A small client of the gateway's JSON API, used by `app.py -t query` and `-t evaluate`."""
from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx


class SearchError(RuntimeError):
    """The gateway refused or failed a query; the message carries its answer."""


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
        return self._search({"text": text, "limit": limit})

    def search_image(self, path: str | Path, limit: int = 10) -> list[dict]:
        encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return self._search({"image": encoded, "limit": limit})

    def _search(self, body: dict) -> list[dict]:
        response = self.http.post("/search", json=body)
        if response.status_code != 200:
            raise SearchError(f"search failed ({response.status_code}): {response.text[:500]}")
        return response.json()["matches"]

    def close(self) -> None:
        self.http.close()
