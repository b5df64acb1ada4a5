"""Thread pools for side work that releases the GIL, run inline where every core has a process.

Arrow and numpy work releases the GIL, so a stage can run two such steps side by side on a
second core. In a reducing worker, where the engine runs one busy process per core, that second
core is taken: the threads only add switching between four runnable threads on two cores (at
10M spans the reduction took 21 s with the side work inline against 23 s with threads).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")

#: Set once in a process whose every core runs a process of its own (see :func:`run_inline`).
_inline = False


class _InlineExecutor(Executor):
    """Runs each task as it is submitted, in the calling thread."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the caller through the future, as a pool does
            future.set_exception(error)
        return future


def side_pool(max_workers: int) -> Executor:
    """A pool of ``max_workers`` threads, or an executor that runs tasks inline (see the module
    docstring)."""
    return _InlineExecutor() if _inline else ThreadPoolExecutor(max_workers=max_workers)


def run_inline() -> None:
    """From now on, this process runs side work inline: for worker processes, one per core."""
    global _inline
    _inline = True
