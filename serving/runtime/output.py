"""What a user sees while a flow starts and serves: a few lines of our own, not Jina's and gRPC's logs.

By default Jina logs only errors (its start-up prints a warning per second while the gateway waits for the
executors, and a banner with a private network address), gRPC's core logs nothing (an idle flow printed
`GOAWAY ... too_many_pings` error lines), and the deprecation warning that importing Jina raises is not shown.
`--verbose` (`configure_output(verbose=True)`) leaves all of them as Jina sets them.

The settings are environment variables, so the processes Jina forks inherit them; they are read when Jina and
gRPC are imported, so this runs before either is.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator

_verbose = False


def configure_output(verbose: bool) -> None:
    """Quiet Jina and gRPC in this process and the ones it forks, unless `verbose`; call before importing Jina."""
    global _verbose
    _verbose = verbose
    if verbose:
        return
    os.environ.setdefault("JINA_LOG_LEVEL", "ERROR")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


@contextlib.contextmanager
def jina_banner() -> Iterator[None]:
    """Where Jina's "Flow is ready" banner goes: stderr when verbose (stdout carries only results), else nowhere."""
    target = sys.stderr if _verbose else io.StringIO()
    with contextlib.redirect_stdout(target):
        yield
