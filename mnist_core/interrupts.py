"""Ctrl-C that never leaves a half-written result: the first one finishes the current step.

A build writes in steps (a training batch, an evaluation, a model file, a figure, a
document). While ``deferred()`` is active, the first SIGINT only sets a flag; the build
calls ``check()`` between steps, which then raises ``KeyboardInterrupt`` at a point where
everything already written is complete (staging folders are removed, documents are
renamed into place or not at all). A second Ctrl-C raises at once, for a user who would
rather lose the step than wait for it.

Raising inside a TensorFlow step can abort the whole process (glibc's ``free(): invalid
next size`` was seen on a real run); raising between steps unwinds like any exception.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()


def _on_sigint(signum, frame) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()
    print("\n[mnist-report] Ctrl-C: stopping after the current step "
          "(press Ctrl-C again to stop at once)", flush=True)


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt here if Ctrl-C was pressed since the last check."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """Defer Ctrl-C to the next ``check()`` while the block runs (nested use is fine).

    Only where Python's own handler is active: an ignored SIGINT (nohup) or a host's
    handler (a Jupyter kernel) is left alone.
    """
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if not install:
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
        check()
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


def checkpoint(name: str) -> None:
    """Test hook: ``MNIST_REPORT_PAUSE_AT=name[:seconds]`` pauses the build at a named point.

    The kill tests use it to stop a real build at a known moment (between
    writing a staging folder and publishing it, say) instead of hoping a
    timer lands there.
    """
    wanted = os.environ.get("MNIST_REPORT_PAUSE_AT", "")
    point, _, seconds = wanted.partition(":")
    if point == name:
        print(f"[mnist-report] paused at {name}", flush=True)
        time.sleep(float(seconds or 3600))
