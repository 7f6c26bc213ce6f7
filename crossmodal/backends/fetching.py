"""Helpers of the models' weight downloads: a quick reachability check and streaming members out of a remote tar.

Every failure is a FetchError whose message is one line.
"""
from __future__ import annotations

import os
import shutil
import socket
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class FetchError(RuntimeError):
    """Weights cannot be fetched; the message is one line that says why."""


def one_line(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """A short reason when the host of `url` cannot be reached (DNS or TCP), so that no download sits through
    minutes of retries; None when it can, or when a proxy is configured (then only the download can tell)."""
    if not url or any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as error:
        return f"cannot reach {parsed.hostname}: {one_line(error, 80)}"
    return None


def extract_tar_members(url: str, wanted: dict[str, Path],
                        opener: Callable[[str], Any] = urllib.request.urlopen) -> None:
    """Stream the tar at `url` and write each member whose path is or ends with /<key> of `wanted`; stops reading
    as soon as all are found (a release archive often holds many models, most of which are not needed). Each file
    is written under a temporary name and renamed, so an interrupted download never leaves half a file."""
    missing = dict(wanted)
    try:
        with opener(url) as response, tarfile.open(fileobj=response, mode="r|*") as bundle:
            for member in bundle:
                name = member.name.removeprefix("./")
                key = next((key for key in missing if member.isfile() and (name == key or name.endswith("/" + key))),
                           None)
                source = bundle.extractfile(member) if key is not None else None
                if key is None or source is None:
                    continue
                target = missing.pop(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                with source, open(partial, "wb") as output:
                    shutil.copyfileobj(source, output, 1 << 20)
                os.replace(partial, target)
                if not missing:
                    break
    except (OSError, tarfile.TarError, EOFError) as error:
        raise FetchError(f"cannot fetch {url}: {one_line(error, 200)}") from None
    if missing:
        raise FetchError(f"{url} has no {', '.join(missing)}")
