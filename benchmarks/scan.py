"""A whole scan against the bare parse loop on the same file, in the same run: time and peak memory.

Generates the synthetic landscape of ``landscape.py`` (about 300 services) as Collector-framed
OTLP protobuf into ``benchmarks/data/`` (reused when present), then measures in turns, each in a
fresh child process:

* **bare loop**: ``ingest.py``'s baseline: parse every message with opentelemetry-proto and copy
  ten fields per span into Python lists (one process);
* **scan**: ``orchscan scan FILE --format json --no-progress`` (read, partition, reduce, landscape,
  findings.json), with ``--memory-limit`` and ``--jobs`` as given.

Prints wall time, CPU seconds of the run and its workers, the ratio to the bare loop of the same
round, the peak RSS of the largest process and the peak PSS of the whole process tree (sampled
from /proc: PSS counts the pages forked workers share with the parent once).
The targets of the streaming scan: a whole scan within 1.5x the bare loop, peak RSS within
600 MB at 1M spans and within 1 GB at 10M.

    python benchmarks/scan.py                           # 1,000,000 spans, 3 rounds
    python benchmarks/scan.py --spans 10000000 --repeat 1 --keep benchmarks/data
    cd benchmarks/data && python ../compare_scans.py findings-1000000-1.json findings-10000000-1.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ingest import DATA, ROOT, Measurement, _isolated
from landscape import write_otlp


def landscape_file(spans: int) -> Path:
    """The benchmark landscape of about ``spans`` spans, generated once."""
    path = DATA / f"landscape-{spans}.binpb"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        started = time.perf_counter()
        written = write_otlp(partial, spans)
        partial.rename(path)
        print(f"generated {written:,} spans in {time.perf_counter() - started:.0f} s: {path}", flush=True)
    return path


def _row(run: Measurement, baseline: Measurement) -> str:
    return (
        f"{run.label:34} {run.seconds:8.2f} {run.cpu_seconds:7.2f} {run.seconds / baseline.seconds:6.2f}"
        f" {run.peak_rss_mb:8.0f} {run.tree_peak_mb:8.0f}"
    )


def main() -> None:
    """Measure the bare loop and the whole scan in turns and print one row per run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--memory-limit", default="1G")
    parser.add_argument(
        "--keep", type=Path, help="copy each round's findings.json here (findings-SPANS-ROUND.json)"
    )
    args = parser.parse_args()
    path = landscape_file(args.spans)
    print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MB")
    print(f"{'run':34} {'seconds':>8} {'CPU s':>7} {'x bare':>6} {'peak MB':>8} {'tree PSS':>8}")
    for round_number in range(args.repeat):
        baseline = _isolated(
            "bare loop", [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--bare", str(path)]
        )
        print(_row(baseline, baseline), flush=True)
        out = Path(tempfile.mkdtemp(prefix="orchscan-bench-"))
        try:
            command = [
                sys.executable,
                "-m",
                "orchscan",
                "scan",
                str(path),
                "--format",
                "json",
                "--no-progress",
                "--out",
                str(out / "report"),
                "--memory-limit",
                args.memory_limit,
                "--jobs",
                str(args.jobs),
            ]
            scan = _isolated(f"scan -j {args.jobs} --memory-limit {args.memory_limit}", command)
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                kept = args.keep / f"findings-{args.spans}-{round_number + 1}.json"
                shutil.copyfile(out / "report" / "findings.json", kept)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(_row(scan, baseline), flush=True)


if __name__ == "__main__":
    main()
