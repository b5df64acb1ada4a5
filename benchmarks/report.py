"""Time HTML and Markdown report generation for a large landscape and state the HTML size.

Usage: ``python benchmarks/report.py [--services 300] [--repeat 3]``. The landscape comes from
the test factory (seeded), so runs are comparable; the graph layout by Graphviz's ``dot`` is
included in the HTML time, as it is in a scan.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from analysis_factories import large_analysis

from orchscan.reports.html.render import render_html
from orchscan.reports.markdown import render_markdown


def main() -> None:
    """Render the reports ``--repeat`` times and print the best time and the output sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    analysis = large_analysis(args.services)
    html_times, markdown_times = [], []
    html = markdown = ""
    for _ in range(args.repeat):
        start = time.perf_counter()
        html = render_html(analysis)
        html_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        markdown = render_markdown(analysis)
        markdown_times.append(time.perf_counter() - start)
    print(
        f"{len(analysis.services)} services, {len(analysis.edges)} edges, {len(analysis.flows)} flows, "
        f"{len(analysis.findings)} findings; dot: {shutil.which('dot') or 'missing (fallback layout)'}"
    )
    print(f"HTML:     best {min(html_times):.2f} s of {args.repeat}, {len(html.encode()) / 1e6:.2f} MB")
    print(
        f"Markdown: best {min(markdown_times) * 1000:.1f} ms of {args.repeat}, "
        f"{len(markdown.encode()) / 1e3:.1f} kB"
    )


if __name__ == "__main__":
    main()
