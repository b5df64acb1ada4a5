"""summary.md stays under its size limit on a generated landscape of many coordinating services."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from orchscan.cli import main
from orchscan.reports.markdown import MAX_CHARS

COORDINATORS = 150
STEPS = 8
LEAVES = 60
REQUESTS = 3


def _span(
    trace: str, span: str, parent: str | None, service: str, kind: str, start: int, route: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace,
        "id": span,
        "name": f"POST {route}",
        "kind": kind,
        "timestamp": start,
        "duration": 900,
        "localEndpoint": {"serviceName": service},
        "tags": {"http.method": "POST", "http.route": route, "http.status_code": "201"},
    }
    if parent:
        out["parentId"] = parent
    return out


def generated_landscape() -> list[dict[str, Any]]:
    """Each coordinator calls eight leaf services one after another, a few requests each (Zipkin v2)."""
    spans: list[dict[str, Any]] = []
    counter = 0
    for c in range(COORDINATORS):
        owner = f"coordinator-{c:03d}-" + "x" * 40
        for r in range(REQUESTS):
            trace = f"{c * 100 + r + 1:032x}"
            root = f"{(counter := counter + 1):016x}"
            start = 1_700_000_000_000_000 + (c * 10 + r) * 1_000_000
            spans.append(_span(trace, root, None, owner, "SERVER", start, f"/checkout-{c}/orders"))
            for s in range(STEPS):
                leaf = f"leaf-{(c * STEPS + s) % LEAVES:02d}"
                route = f"/{leaf}/resources-with-a-long-descriptive-route-name/{s}"
                client = f"{(counter := counter + 1):016x}"
                at = start + 1_000 + s * 1_000
                spans.append(_span(trace, client, root, owner, "CLIENT", at, route))
                server = f"{(counter := counter + 1):016x}"
                spans.append(_span(trace, server, client, leaf, "SERVER", at + 50, route))
    return spans


def test_summary_of_a_large_generated_landscape_stays_under_the_limit(tmp_path: Path) -> None:
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(generated_landscape()))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["scan", str(traces), "--out", str(out), "--format", "json,markdown", "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    flows = json.loads((out / "findings.json").read_text())["flows"]
    assert len(flows) >= COORDINATORS
    summary = (out / "summary.md").read_text()
    assert len(summary) < MAX_CHARS
    left_out = summary.rstrip().splitlines()[-1]
    assert left_out.startswith(f"*Left out to keep this summary under {MAX_CHARS:,} characters: ")
    listed = summary.count("\n### ")
    assert 0 < listed < len(flows) and f"{len(flows) - listed:,} flows" in left_out
