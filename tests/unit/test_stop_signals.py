"""SIGTERM and SIGINT while a flow runs: raised at once, remembered, deferred while closing, handlers restored."""
import os
import signal
import threading
import time

import pytest

from serving.runtime.stop_signals import handle_stop_signals


def send_to_self(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs in the main thread at its next bytecode; a KeyboardInterrupt ends the sleep


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_interrupts_and_is_remembered(sig):
    with handle_stop_signals() as stop:
        assert not stop.requested
        with pytest.raises(KeyboardInterrupt):
            send_to_self(sig)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.raise_if_requested()  # a request that Jina swallowed is still acted on


def test_no_request_means_no_interrupt():
    with handle_stop_signals() as stop:
        stop.raise_if_requested()
        assert not stop.requested


def test_while_deferred_a_signal_is_only_recorded():
    with handle_stop_signals() as stop:
        with stop.deferred():
            send_to_self(signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            send_to_self(signal.SIGTERM)  # interrupts again once the deferred block is over


def test_previous_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with handle_stop_signals():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_wait_ends_on_a_signal_that_another_thread_took():
    """Such a signal does not interrupt the main thread's blocking wait; the sliced wait still acts on it."""

    def signal_this_thread() -> None:
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    main_thread = threading.main_thread().ident
    with handle_stop_signals() as stop:
        helper = threading.Timer(0.3, signal_this_thread)
        # A wait that misses the signal is ended by this one, sent to the main thread, so the test fails, not hangs.
        watchdog = threading.Timer(5, signal.pthread_kill, args=(main_thread, signal.SIGTERM))
        helper.start()
        watchdog.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            stop.wait(poll_seconds=0.2)
        waited = time.monotonic() - started
        watchdog.cancel()
        helper.join()
        assert waited < 4, f"the wait ended only after {waited:.1f} s"


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def body():
        with handle_stop_signals() as stop:
            seen.append((signal.getsignal(signal.SIGTERM), stop.requested))

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [(before, False)]


class SwallowingFlow:
    """A flow whose client catches the KeyboardInterrupt of a stop signal during a request, as Jina's does."""

    def __init__(self) -> None:
        self.posts = 0
        self.port = 1234

    def post(self, endpoint: str) -> list:
        self.posts += 1
        if self.posts == 2:
            try:
                send_to_self(signal.SIGINT)
            except KeyboardInterrupt:
                pass  # "user cancel the process"
        return [endpoint]


def test_a_stop_that_the_client_swallowed_ends_the_job_after_that_request():
    from serving.runtime.flows import StoppableFlow

    flow = SwallowingFlow()
    with handle_stop_signals() as stop:
        stoppable = StoppableFlow(flow, stop, client=flow)
        assert stoppable.post("/index") == ["/index"] and stoppable.port == 1234
        with pytest.raises(KeyboardInterrupt):
            for _ in range(10):  # an indexing job's loop of requests
                stoppable.post("/index")
    assert flow.posts == 2
