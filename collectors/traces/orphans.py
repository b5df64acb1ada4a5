"""A worker process whose parent is gone ends on its own.

A parent killed outright (SIGKILL, the kernel's OOM killer) runs no clean-up. A pool worker
waiting for its next task holds, like every forked child, both ends of the pool's task queue,
so it never sees the queue close: it would wait forever, holding its memory and the input
files. So each pool worker watches its parent's process id from a thread of its own.
"""

from __future__ import annotations

import os
import threading

#: How often a worker checks that its parent is still there, in seconds.
PARENT_CHECK_SECONDS = 1.0

#: A worker's exit status when it ends because its parent is gone.
ORPHANED_EXIT = 3


def end_when_parent_is_gone(parent: int) -> None:
    """Start a daemon thread that ends this process once ``parent`` is no longer its parent.

    ``parent`` is the id the parent gave, not ``os.getppid()`` read here: a parent that died
    before this runs would already have handed the process over to another.
    """
    thread = threading.Thread(target=_watch, args=(parent,), name="orchscan-parent-watch", daemon=True)
    thread.start()


def _watch(parent: int) -> None:
    stopped = threading.Event()  # never set: a sleep that the interpreter's exit does not wait for
    while os.getppid() == parent:
        stopped.wait(PARENT_CHECK_SECONDS)
    os._exit(ORPHANED_EXIT)
