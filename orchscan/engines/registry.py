"""The engines a scan can run on, by name (``--engine`` offers exactly these), and how they fail.

Kept free of heavy imports: the command line reads the names before it knows whether a scan runs.
An engine whose optional dependency is missing stays listed and says what to install when chosen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineInfo:
    """What an engine is for, as ``--help`` tells it, and the extra it needs installed (if any)."""

    description: str
    extra: str | None = None


ENGINES: dict[str, EngineInfo] = {
    "local": EngineInfo("this machine: partitions reduced in --jobs forked worker processes"),
    "dask": EngineInfo(
        "a Dask cluster (--dask-scheduler, else a local cluster of --jobs workers): workers read the "
        "inputs, shuffle the spans into partitions and reduce them",
        extra="dask",
    ),
}


#: Why a live source is refused on the dask engine: its workers read files and storage URLs, while a
#: live source is fetched by one client, whose spans would all have to be shipped to the workers.
LIVE_ON_DASK = (
    "{source}: live sources are fetched by this machine; --engine dask reads files and storage URLs "
    "(export the traces to shared storage first, or scan the source with --engine local)"
)


class EngineError(Exception):
    """The engine could not run the scan: unreachable, missing, or it lost its work for good."""
