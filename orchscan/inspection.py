"""What ``orchscan inspect`` prints: a per-file account of an ingest, as text or JSON."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from orchscan.collectors.model.records import Ingest
from orchscan.collectors.model.spans import SCHEMA_VERSION, total_services, total_traces
from orchscan.reports.untrusted import printable


def _relative(file: str, base: Path) -> str:
    if "://" in file:  # a live source's URL, not a path
        return file
    try:
        return Path(os.path.relpath(file, base)).as_posix()
    except ValueError:
        return file


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe_ingest(result: Ingest, *, base: Path) -> dict[str, Any]:
    """A JSON-ready description of an ingest; file paths relative to ``base``."""
    table = result.spans
    starts = [f.start_ns for f in result.files if f.start_ns is not None]
    ends = [f.end_ns for f in result.files if f.end_ns is not None]
    return {
        "span_schema_version": SCHEMA_VERSION,
        "files": [
            {
                "file": _relative(f.file, base),
                "format": f.format,
                "spans": f.spans,
                "traces": f.traces,
                "services": list(f.services),
                "start": _iso(f.start_ns),
                "end": _iso(f.end_ns),
            }
            for f in result.files
        ],
        "totals": {
            "files": len(result.files),
            "spans": table.num_rows,
            "traces": total_traces(table),
            "services": total_services(table),
            "start": _iso(min(starts) if starts else None),
            "end": _iso(max(ends) if ends else None),
            "skipped": result.skipped_total,
        },
        "skipped": [
            {"file": _relative(s.file, base), "position": s.position, "reason": s.reason, "count": s.count}
            for s in result.skipped
        ],
        "notices": [
            {"file": _relative(n.file, base), "reason": n.reason, "count": n.count} for n in result.notices
        ],
        "sources": [
            {
                "source": s.source,
                "format": s.format,
                "window_start": _iso(s.start_ns),
                "window_end": _iso(s.end_ns),
                "requests": s.requests,
                "retries": s.retries,
                "pages": s.pages,
                "traces": s.traces,
                "errors": s.errors,
                "bytes": s.bytes,
            }
            for s in result.sources
        ],
    }


def render_inspection(description: dict[str, Any], *, as_json: bool) -> str:
    """Render an ingest description for a terminal, or as indented JSON."""
    if as_json:
        return orjson.dumps(description, option=orjson.OPT_INDENT_2).decode() + "\n"
    lines = []
    fetched = {s["source"]: s for s in description["sources"]}
    for f in description["files"]:
        lines.append(f"{f['file']}")
        if f["file"] in fetched:
            s = fetched[f["file"]]
            lines.append(f"  window: {s['window_start']} .. {s['window_end']}")
            lines.append(
                f"  fetched: {s['traces']:,} traces in {s['pages']:,} page(s), {s['requests']:,} requests "
                f"({s['retries']:,} retries, {s['errors']:,} failed), {s['bytes']:,} bytes"
            )
        if f["format"] == "unrecognised":
            lines.append("  format: unrecognised")
            continue
        lines.append(
            f"  format: {f['format']}  spans: {f['spans']:,}  traces: {f['traces']:,}  "
            f"services: {len(f['services'])}"
        )
        if f["start"]:
            lines.append(f"  time: {f['start']} .. {f['end']}")
        if f["services"]:
            lines.append(f"  services: {', '.join(f['services'])}")
    t = description["totals"]
    lines.append("")
    lines.append(
        f"total: {t['files']} file(s), {t['spans']:,} spans, {t['traces']:,} traces, "
        f"{t['services']} services, {t['start']} .. {t['end']}"
    )
    if description["skipped"]:
        lines.append(f"skipped: {t['skipped']:,} record(s)")
        for s in description["skipped"]:
            count = f" (x{s['count']})" if s["count"] > 1 else ""
            lines.append(f"  {s['file']} @ {s['position']}: {s['reason']}{count}")
    for n in description["notices"]:
        lines.append(f"notice: {n['file']}: {n['reason']} ({n['count']} spans)")
    # File names, service names and reasons quote span data: never let it drive the terminal.
    return "\n".join(printable(line) for line in lines) + "\n"
