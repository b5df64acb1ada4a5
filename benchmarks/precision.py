"""Precision under noise: flows and findings of a landscape as recorded and with real-world noise.

Builds a synthetic landscape (default: 1,000,000 spans of :data:`landscape.SAGA_MIX`), scans it as
recorded and again after :func:`landscape.add_noise` (spans lost, delivered twice, clocks off),
each through the span checks a scan runs, and prints per variant: orchestrators, claimed and
observed flows, fragments, and findings by severity (and by rule at high and above). A noisy
scan should claim what the clean one claims, and no more highs.

    python benchmarks/precision.py                               # 1M spans, clean and 1 % dropped
    python benchmarks/precision.py --spans 200000 --dropped 0.05 --duplicated 0.02 --skewed 0.2
    python benchmarks/precision.py --mix default                 # the stress mix (random partners)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import pyarrow as pa  # noqa: E402
from landscape import MIX, SAGA_MIX, Noise, add_noise, build_table  # noqa: E402

from orchscan.analyzer.pipeline import analyze  # noqa: E402
from orchscan.analyzer.results import SEVERITIES, Analysis  # noqa: E402
from orchscan.collectors.model.records import Ingest  # noqa: E402
from orchscan.collectors.traces.ingest import check_spans  # noqa: E402


def _scan(table: pa.Table) -> tuple[Analysis, float]:
    checked = check_spans(table)
    start = time.perf_counter()
    analysis = analyze(Ingest(checked.table, (), checked.skipped, checked.notices)).analysis
    return analysis, time.perf_counter() - start


def _print(name: str, analysis: Analysis, seconds: float) -> None:
    severities = Counter(f.severity for f in analysis.findings)
    observed = Counter(f.verdict for f in analysis.observed_flows)
    fragments = analysis.input.fragments
    print(f"== {name}: {analysis.input.spans:,} spans, analysed in {seconds:.1f} s")
    print(f"   orchestrators: {sum(s.role == 'orchestrator' for s in analysis.services)}")
    print(f"   flows claimed: {len(analysis.flows)}; observed: {dict(sorted(observed.items()))}")
    print(f"   fragments: {fragments.kept:,} kept ({fragments.calls:,} calls), ", end="")
    print(f"{fragments.attached:,} attached")
    print("   findings: " + ", ".join(f"{severities[s]} {s}" for s in SEVERITIES if severities[s]))
    severe = Counter((f.rule, f.severity) for f in analysis.findings if f.severity in ("critical", "high"))
    for (rule, severity), count in sorted(severe.items()):
        print(f"     {severity} {rule}: {count}")


def main() -> None:
    """Scan the clean landscape and the noisy one, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--mix", choices=("saga", "default"), default="saga")
    parser.add_argument("--dropped", type=float, default=0.01)
    parser.add_argument("--duplicated", type=float, default=0.0)
    parser.add_argument("--skewed", type=float, default=0.0, help="share of services whose clock is off")
    parser.add_argument("--skew-ms", type=float, default=40.0)
    args = parser.parse_args()
    table = build_table(args.spans, mix=SAGA_MIX if args.mix == "saga" else MIX)
    _print("as recorded", *_scan(table))
    noise = Noise(args.dropped, args.duplicated, args.skewed, args.skew_ms)
    _print(f"with {noise}", *_scan(add_noise(table, noise)))


if __name__ == "__main__":
    main()
