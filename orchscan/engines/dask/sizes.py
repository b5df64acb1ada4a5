"""How big orchscan's task results are, for Dask's memory manager (entry point ``dask.sizeof``).

Dask measures a result it does not know with ``sys.getsizeof``: a unit's heavy records (frames of
every request and call, tens of megabytes) would count as 56 bytes, so a worker would neither
spill them under pressure nor see why its memory grows. Registered through the ``dask.sizeof``
entry point, so every worker with orchscan installed knows; lazily, so that importing Dask does
not import the analysis.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any


def register(sizeof: Any) -> None:
    """Teach Dask's ``sizeof`` orchscan's results, once it first meets an orchscan object."""

    @sizeof.register_lazy("orchscan")  # type: ignore[untyped-decorator]
    def _register() -> None:
        from orchscan.analyzer.reduction import PartitionHeavy, SelectedRecords
        from orchscan.engines.dask.tasks import PieceRead
        from orchscan.engines.units import UnitResult

        def deep(value: object) -> int:
            """A dataclass's own size plus the sizes of its fields, Dask's measure for each."""
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                fields = dataclasses.fields(value)
                return sys.getsizeof(value) + sum(deep(getattr(value, field.name)) for field in fields)
            return int(sizeof(value))

        sizeof.register((UnitResult, PartitionHeavy, SelectedRecords, PieceRead))(deep)
