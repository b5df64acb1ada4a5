"""A whole scan against the bare parse loop on the same file, in the same run: time and peak memory.

Generates the synthetic landscape of ``landscape.py`` (about 300 services) as Collector-framed
OTLP protobuf into ``benchmarks/data/`` (reused when present), then measures in turns, each in a
fresh child process:

* **bare loop**: ``ingest.py``'s baseline: parse every message with opentelemetry-proto and copy
  ten fields per span into Python lists (one process);
* **scan**: ``orchscan scan FILE --format json --no-progress`` (read, partition, reduce, landscape,
  findings.json), with ``--memory-limit`` and ``--jobs`` as given.

Prints wall time, CPU seconds of the run and its workers, the ratio to the bare loop of the same
round and the peak RSS of the largest process. One more scan after the rounds samples the peak
PSS of the whole process tree from /proc (PSS counts the pages forked workers share with the
parent once); sampling slows a run, so the timed rounds go without it.
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
from landscape import FILE_VERSION, write_otlp


def landscape_file(spans: int) -> Path:
    """The benchmark landscape of about ``spans`` spans, generated once."""
    path = DATA / f"landscape-{spans}-{FILE_VERSION}.binpb"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        started = time.perf_counter()
        written = write_otlp(partial, spans)
        partial.rename(path)
        print(f"generated {written:,} spans in {time.perf_counter() - started:.0f} s: {path}", flush=True)
    return path


def _row(run: Measurement, baseline: Measurement) -> str:
    tree = f"{run.tree_peak_mb:8.0f}" if run.tree_peak_mb else f"{'-':>8}"
    return (
        f"{run.label:44} {run.seconds:8.2f} {run.cpu_seconds:7.2f} {run.seconds / baseline.seconds:6.2f}"
        f" {run.peak_rss_mb:8.0f} {tree}"
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
    print(f"{'run':44} {'seconds':>8} {'CPU s':>7} {'x bare':>6} {'peak MB':>8} {'tree PSS':>8}")
    command = [
        sys.executable,
        "-m",
        "orchscan",
        "scan",
        str(path),
        "--format",
        "json",
        "--no-progress",
        "--memory-limit",
        args.memory_limit,
        "--jobs",
        str(args.jobs),
    ]
    label = f"scan -j {args.jobs} --memory-limit {args.memory_limit}"
    baseline = None
    # Timed rounds run unsampled (see ingest.measure); the tree's PSS comes from one more scan.
    for round_number in range(args.repeat):
        baseline = _isolated(
            "bare loop",
            [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--bare", str(path)],
            sample_tree=False,
        )
        print(_row(baseline, baseline), flush=True)
        scan = _scan(
            label,
            command,
            sample_tree=False,
            keep=args.keep,
            name=f"findings-{args.spans}-{round_number + 1}.json",
        )
        print(_row(scan, baseline), flush=True)
    if baseline is not None:
        print(_row(_scan(f"{label}, tree sampled", command, sample_tree=True), baseline), flush=True)


def _scan(
    label: str, command: list[str], *, sample_tree: bool, keep: Path | None = None, name: str = ""
) -> Measurement:
    """One scan into a temporary folder; its findings.json copied to ``keep`` under ``name``."""
    out = Path(tempfile.mkdtemp(prefix="orchscan-bench-"))
    try:
        run = _isolated(label, [*command, "--out", str(out / "report")], sample_tree=sample_tree)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / "report" / "findings.json", keep / name)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return run


if __name__ == "__main__":
    main()
