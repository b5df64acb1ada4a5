"""The Dask cluster a scan runs on: reached or started, its workers' shape, a folder they all see, and
its failures in words.

Dask itself is optional (``orchscan[dask]``): it is imported only when the engine is chosen, and
its absence is an :class:`EngineError` that says what to install.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from orchscan.engines.dask.inputs import is_url
from orchscan.engines.registry import EngineError

if TYPE_CHECKING:
    from distributed import Client, Future


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise EngineError("--engine dask needs Dask: pip install 'orchscan[dask]'") from None
    return distributed


def _connect_timeout() -> float:
    """Dask's own connection timeout (``distributed.comm.timeouts.connect``), in seconds."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))


@contextmanager
def dask_client(scheduler: str | None, *, workers: int, memory_limit: int, scratch: str) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler`` once it has a worker, or of a local cluster of
    ``workers`` single-threaded worker processes of ``memory_limit`` bytes each (their spill
    folders in ``scratch``); closed when the block ends."""
    distributed = _distributed()
    if scheduler is None:
        with (
            distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=memory_limit,
                host="127.0.0.1",
                dashboard_address=":0",
                local_directory=scratch,
                # Its workers' memory notes are noise here; a task lost for good fails the scan.
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster, set_as_default=False) as client,
        ):
            yield client
        return
    timeout = _connect_timeout()
    try:
        client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise EngineError(
                f"the Dask scheduler at {scheduler} has no workers (waited {timeout:g} s)"
            ) from None
        yield client


@dataclass(frozen=True)
class Workers:
    """What the cluster's workers offer: the smallest memory limit of one (None when none has
    one), the most threads one runs, and threads in all."""

    memory: int | None
    threads: int
    total_threads: int


def workers_of(client: Client) -> Workers:
    """The shape of the workers connected now."""
    found = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(worker["memory_limit"]) for worker in found if worker.get("memory_limit")]
    threads = [int(worker["nthreads"]) for worker in found]
    return Workers(min(limits) if limits else None, max(threads, default=1), sum(threads))


@contextmanager
def shared_folder(client: Client, parent: str) -> Iterator[str]:
    """A fresh folder below ``parent`` (a path or URL) for the shuffle files, checked to be visible
    to every worker, removed with everything in it when the block ends."""
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(parent)
        name = f"{root.rstrip('/')}/orchscan-shuffle-{uuid.uuid4().hex[:12]}"
        fs.makedirs(name, exist_ok=False)
    except (ImportError, ValueError, OSError) as error:
        raise EngineError(f"cannot make a work folder below {parent}: {error}") from None
    folder = fs.unstrip_protocol(name) if is_url(parent) else name
    try:
        marker = f"{folder}/visible"
        with fs.open(f"{name}/visible", "wb"):
            pass
        blind = sorted(worker for worker, sees in client.run(sees_file, marker).items() if not sees)
        if blind:
            raise EngineError(
                f"the work folder {parent} is not visible to worker(s) {', '.join(blind)}: pass "
                "--work-dir on storage every worker shares (a shared file system, or a URL such as "
                "s3://bucket/scratch)"
            )
        yield folder
    finally:
        fs.rm(name, recursive=True)


def sees_file(location: str) -> bool:
    """Whether this process sees the file (run on every worker)."""
    if not is_url(location):
        return os.path.exists(location)
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(location)
    return bool(fs.exists(path))


def gathered(client: Client, futures: Sequence[Future[Any]], stage: str) -> list[Any]:
    """The futures' results in order; a task that failed or was lost for good is an EngineError."""
    distributed = _distributed()
    try:
        return list(client.gather(list(futures)))
    except distributed.KilledWorker as error:
        raise EngineError(
            f"{stage}: Dask gave up on a task after the workers running it died ({error}); a worker "
            "may lack memory for a unit: give workers more (dask worker --memory-limit) or lower "
            "--memory-limit"
        ) from None
    except Exception as error:
        raise EngineError(f"{stage} failed on the cluster: {type(error).__name__}: {error}") from error
