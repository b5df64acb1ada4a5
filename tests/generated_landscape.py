"""The benchmarks' synthetic landscape (``benchmarks/landscape.py``), for tests that need volume."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from paths import ROOT


def write_landscape(path: Path, spans: int, spans_per_message: int | None = None) -> int:
    """Write about ``spans`` spans of the synthetic landscape as Collector-framed OTLP protobuf,
    in messages of ``spans_per_message`` (default: a Collector batch's)."""
    name = "benchmark_landscape"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "landscape.py")
        assert spec is not None and spec.loader is not None
        module = sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
        spec.loader.exec_module(module)
    written: int = module.write_otlp(
        path, spans, spans_per_message=spans_per_message or module.SPANS_PER_MESSAGE
    )
    return written
