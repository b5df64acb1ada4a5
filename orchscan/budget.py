"""The memory budget of a scan (``--memory-limit``) and how its stages share it.

Kept apart from the scan's wiring (:mod:`orchscan.runner`), which loads the whole analysis: the
command line reads the limit, and starts the parse workers, before loading any of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The default memory budget of a scan (``--memory-limit``).
DEFAULT_MEMORY_LIMIT = 1 << 30

#: Bytes of memory reducing one span takes at its peak (span table, call tables, marks and
#: partials together), measured on the benchmark landscapes; sizes the reduction units.
REDUCE_BYTES_PER_SPAN = 1500


#: Units are never smaller than this, whatever the budget: the fixed cost of a unit must not dominate.
MIN_UNIT_SPANS = 10_000

#: Bytes one mined request takes in the landscape stage at its peak (its marked calls, merged,
#: and the mining's working copies), measured on the benchmark landscape; sizes the sample of
#: requests flows are mined from (see :mod:`orchscan.analyzer.flows.sampling`).
LANDSCAPE_BYTES_PER_REQUEST = 6000

#: Flows are mined from at least this many requests in all, whatever the budget: fewer would
#: leave too little evidence for the claims made of them.
MIN_MINED_REQUESTS = 10_000


@dataclass(frozen=True)
class MemoryBudget:
    """How one memory limit is shared between the stages of a scan.

    Routed spans wait in memory up to ``route_buffer_bytes``, then go to the work folder; each
    of ``jobs`` workers reduces units of at most ``unit_spans`` spans; the heavy records workers
    keep between reduction and selection stay in memory up to ``heavy_bytes`` in all, then
    spill. On a cluster, one read task holds up to ``input_bytes`` of routed spans. The landscape
    stage mines flows from at most ``mined_requests`` requests. Before any of that, the parse
    workers are handed up to ``head_start_bytes`` of input while the scan loads the analysis.

    The local buffer is small on purpose: the reducing workers are forked once reading ends, so
    every routed span still in memory then would count in the parent's peak and in each
    worker's. Writing them costs no measurable time (1M spans: read in 3.40 s with every
    span written, 3.23 s with all 230 MB kept in memory), and the scan's largest process
    peaked at 842 MB instead of 723 MB when they were kept.
    """

    limit: int
    jobs: int

    @property
    def route_buffer_bytes(self) -> int:
        return self.limit // 20

    @property
    def input_bytes(self) -> int:
        return self.limit * 3 // 10

    @property
    def unit_spans(self) -> int:
        return max(MIN_UNIT_SPANS, self.limit * 4 // 10 // self.jobs // REDUCE_BYTES_PER_SPAN)

    @property
    def head_start_bytes(self) -> int:
        """Input the parse workers are handed before the scan has loaded its analysis modules.

        Files are handed over as extents the workers read themselves, so this holds only the
        parsed batches waiting for the parent: about two thirds of the input's bytes without
        the attributes a scan leaves out.
        """
        return self.limit // 10

    @property
    def heavy_bytes(self) -> int:
        return self.limit * 2 // 10

    @property
    def mined_requests(self) -> int:
        """How many requests the landscape stage mines at most, in all: 30 % of the budget."""
        return max(MIN_MINED_REQUESTS, self.limit * 3 // 10 // LANDSCAPE_BYTES_PER_REQUEST)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GiB`` or a plain number of bytes."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"not a size: {text!r} (examples: 512M, 2G, 1073741824)")
    number, unit = found.groups()
    return int(float(number) * 1024 ** "_kmgt".index(unit.lower() or "_"))
