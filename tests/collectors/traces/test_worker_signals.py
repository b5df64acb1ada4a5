"""Worker processes and SIGINT/SIGTERM, with real processes: no window where a signal raises in a worker."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.synchronize import Event

import pytest

from orchscan.collectors.traces.worker_signals import QuietPool, signals_blocked, take_default_actions

FORK = multiprocessing.get_context("fork")


def _dispositions() -> tuple[int, object, object]:
    return os.getpid(), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def _start_then_wait(started: Event, go: Event, ready: Event) -> None:
    started.set()
    go.wait(timeout=60)
    take_default_actions()
    ready.set()
    signal.pause()


def _raise(signum: int, frame: object) -> None:
    raise RuntimeError("a parent's handler ran in the worker")


def test_pool_workers_leave_both_signals_to_the_parent() -> None:
    pool = QuietPool(1, FORK)
    try:
        pid, interrupt, terminate = pool.submit(_dispositions).result(timeout=60)
        assert (interrupt, terminate) == (signal.SIG_IGN, signal.SIG_IGN)
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        # The worker took neither: it still answers, so a result it was sending is never cut off.
        assert pool.submit(_dispositions).result(timeout=60)[0] == pid
    finally:
        pool.shutdown()


def test_a_signal_sent_while_a_worker_starts_ends_it_by_the_default_action() -> None:
    started, go, ready = FORK.Event(), FORK.Event(), FORK.Event()
    previous = signal.signal(signal.SIGTERM, _raise)  # as the command's own handler raises
    try:
        with signals_blocked():
            process = FORK.Process(target=_start_then_wait, args=(started, go, ready))
            process.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert started.wait(timeout=60)
    # The worker runs with the parent's handler but has not set its own: the signal waits.
    os.kill(process.pid, signal.SIGTERM)
    go.set()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGTERM
    assert not ready.is_set()


@pytest.mark.parametrize("other_thread", [False, True], ids=["main thread only", "with another thread"])
def test_the_parent_takes_a_signal_that_came_during_a_start_after_it(other_thread: bool) -> None:
    # With another thread that does not block the signal, the kernel gives the signal to that
    # thread, and Python would run the handler in the main thread inside the block.
    waiting = threading.Event()
    thread = threading.Thread(target=waiting.wait, daemon=True)
    if other_thread:
        thread.start()
    taken: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: taken.append(signum))
    try:
        with signals_blocked():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # time for the other thread to take it
            during = list(taken)
        assert during == [] and taken == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
        waiting.set()


def test_a_signal_noted_during_the_block_keeps_its_ignored_disposition() -> None:
    waiting = threading.Event()
    thread = threading.Thread(target=waiting.wait, daemon=True)
    thread.start()
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with signals_blocked():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # and the process is still here
    finally:
        signal.signal(signal.SIGTERM, previous)
        waiting.set()
