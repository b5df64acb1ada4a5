"""Whether two scans of one landscape (say 1M and 10M spans of it) found the same roles and flows.

Prints each service whose role differs, each flow found by only one scan, and each flow whose
set of steps differs, and counts the flows whose steps are the same but ordered differently
(steps that nothing orders are listed in the order observed most); exits 1 when a role, a flow
or a flow's steps differ. Counts (requests, durations) are not compared: a larger sample of the
same landscape has more of everything.

    python benchmarks/compare_scans.py findings-1000000-1.json findings-10000000-1.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _roles(document: dict[str, Any]) -> dict[str, str]:
    return {service["name"]: service["role"] for service in document["services"]}


def _flows(document: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        flow["id"]: tuple(f"{step['service']} {step['operation']}" for step in flow["steps"])
        for flow in document["flows"]
    }


def main() -> None:
    """Compare the two findings.json files named on the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    first, second = (json.loads(path.read_text()) for path in (args.first, args.second))
    differences = []
    roles_a, roles_b = _roles(first), _roles(second)
    for service in sorted(roles_a.keys() | roles_b.keys()):
        if roles_a.get(service) != roles_b.get(service):
            differences.append(f"role of {service}: {roles_a.get(service)} / {roles_b.get(service)}")
    flows_a, flows_b = _flows(first), _flows(second)
    for flow in sorted(flows_a.keys() ^ flows_b.keys()):
        differences.append(f"flow {flow} only in {'the first' if flow in flows_a else 'the second'}")
    reordered = 0
    for flow in sorted(flows_a.keys() & flows_b.keys()):
        if set(flows_a[flow]) != set(flows_b[flow]):
            only = sorted(set(flows_a[flow]) ^ set(flows_b[flow]))
            differences.append(f"steps of {flow} differ: {len(only)} in one scan only, e.g. {only[:3]}")
        elif flows_a[flow] != flows_b[flow]:
            reordered += 1
    print(
        f"{len(roles_a)} / {len(roles_b)} services, {len(flows_a)} / {len(flows_b)} claimed flows, "
        f"{sum(r == 'orchestrator' for r in roles_a.values())} / "
        f"{sum(r == 'orchestrator' for r in roles_b.values())} orchestrators; "
        f"{reordered} flow(s) with the same steps in another order"
    )
    for line in differences:
        print(line)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
