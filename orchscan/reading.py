"""How a scan opens its trace inputs: early, so that the workers parse while the scan loads.

Loading the analysis (pandas, networkx, the analyzer and the reports) takes the parent about
0.4 s, a core's worth of time before the first span is read. The command line opens the reader
first and starts its workers on a head start of input (:meth:`InputReader.start`), then loads
the rest; this module and the reader load none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchscan.collectors.traces.ingest import InputReader, ProgressCallback
from orchscan.collectors.traces.sources import TraceSource


def scan_reader(
    paths: Iterable[str],
    *,
    sources: Sequence[TraceSource] = (),
    fmt: str | None,
    jobs: int,
    on_progress: ProgressCallback | None = None,
) -> InputReader:
    """The reader of a scan's inputs. The attributes that fill no column are left out: no stage
    of the analysis reads them."""
    return InputReader(
        paths, sources=sources, fmt=fmt, jobs=jobs, on_progress=on_progress, keep_attributes=False
    )
