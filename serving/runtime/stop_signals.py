"""SIGTERM and SIGINT while a flow runs: a request to stop, honoured however far the flow's start has got.

Jina's `Flow.start` returns only after every deployment is ready, some time after the gateway already answers. A
KeyboardInterrupt raised in that window is either swallowed by Jina (a bare `except:`), after which the flow serves
on, or it escapes `start`, after which nothing closes the processes already forked and the interpreter waits on them
forever at exit. So the handler both raises KeyboardInterrupt (Ctrl-C stays prompt) and records the request, and
`serving.runtime.flows.running` closes the flow in either case.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Whether SIGTERM or SIGINT arrived since `handle_stop_signals` was entered."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._interrupts = True

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def on_signal(self, signum: int, frame: object) -> None:
        self._requested.set()
        if self._interrupts:
            raise KeyboardInterrupt

    def raise_if_requested(self) -> None:
        """Act on a request that arrived where Jina caught the KeyboardInterrupt."""
        if self.requested:
            raise KeyboardInterrupt

    def wait(self, poll_seconds: float = 1.0) -> None:
        """Block until a stop signal arrives, then raise KeyboardInterrupt.

        Waits in slices rather than in one blocking call: a signal that the kernel hands to another thread of the
        process only sets CPython's flag, and the handler runs when the main thread next executes bytecode.
        """
        while not self._requested.wait(poll_seconds):
            pass
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Record stop signals without raising: an interrupted `Flow.close` would leave processes running."""
        self._interrupts = False
        try:
            yield
        finally:
            self._interrupts = True


@contextlib.contextmanager
def handle_stop_signals() -> Iterator[StopRequest]:
    """Route SIGTERM and SIGINT to a fresh `StopRequest`; the previous handlers come back on exit.

    Only the main thread may install signal handlers; elsewhere the request is never set and the caller's own
    handling stays in charge.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop.on_signal) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
