"""Ingest throughput and peak memory of ``orchscan inspect``, against a bare protobuf loop.

Generates a synthetic landscape (about ten services, traces of 5-40 spans, HTTP and database
attributes of the current semantic conventions) as OTLP protobuf in the Collector's framing, as
OTLP/JSON Lines and, when that format is registered, as Jaeger JSON, all into ``benchmarks/data/``.
Each measurement runs in its own child process so its peak RSS is its own.

    python benchmarks/ingest.py                 # 1,000,000 spans, all cores
    python benchmarks/ingest.py --spans 200000 --jobs 1
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
BASE_NS = 1_754_000_000_000_000_000
SPANS_PER_MESSAGE = 512
JAEGER_TRACES_PER_PAGE = 1000

# service -> (HTTP routes it serves, database it owns or None)
SERVICES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "frontend": (("/", "/cart", "/checkout", "/product/{id}"), None),
    "checkout": (("/orders", "/orders/{id}"), "postgresql"),
    "cart": (("/cart/{user}", "/cart/{user}/items"), "redis"),
    "catalog": (("/products", "/products/{id}"), "postgresql"),
    "payment": (("/charge",), None),
    "shipping": (("/quote", "/ship"), None),
    "currency": (("/convert",), None),
    "email": (("/send",), None),
    "recommendation": (("/recommendations",), "mongodb"),
    "ads": (("/ads",), None),
}
KIND_SERVER, KIND_CLIENT, KIND_INTERNAL = 2, 3, 1


@dataclass(frozen=True, slots=True)
class SyntheticSpan:
    """One generated span in neutral form, written out by each format's encoder."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    service: str
    name: str
    kind: int
    start: int
    end: int
    error: bool
    attributes: tuple[tuple[str, str | int], ...]


def _server(rng: random.Random, service: str) -> tuple[str, tuple[tuple[str, str | int], ...]]:
    route = rng.choice(SERVICES[service][0])
    method = rng.choice(("GET", "GET", "GET", "POST", "PUT"))
    path = route.replace("{id}", str(rng.randrange(10_000))).replace("{user}", f"u{rng.randrange(5000)}")
    attrs: tuple[tuple[str, str | int], ...] = (
        ("http.request.method", method),
        ("http.route", route),
        ("url.path", path),
        ("url.scheme", "http"),
        ("http.response.status_code", rng.choice((200, 200, 200, 201, 404, 500))),
        ("server.address", service),
        ("server.port", 8080),
        ("network.protocol.version", "1.1"),
        ("client.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
        ("user_agent.original", "python-httpx/0.27.0"),
    )
    return f"{method} {route}", attrs


def _client(rng: random.Random, callee: str) -> tuple[str, tuple[tuple[str, str | int], ...]]:
    method = rng.choice(("GET", "POST"))
    attrs: tuple[tuple[str, str | int], ...] = (
        ("http.request.method", method),
        ("url.full", f"http://{callee}:8080{rng.choice(SERVICES[callee][0])}"),
        ("server.address", callee),
        ("server.port", 8080),
        ("http.response.status_code", 200),
        ("network.protocol.version", "1.1"),
    )
    return method, attrs


def _db(rng: random.Random, system: str) -> tuple[str, tuple[tuple[str, str | int], ...]]:
    operation = rng.choice(("SELECT", "SELECT", "INSERT", "UPDATE"))
    table = rng.choice(("orders", "items", "users", "products"))
    attrs: tuple[tuple[str, str | int], ...] = (
        ("db.system.name", system),
        ("db.operation.name", operation),
        ("db.collection.name", table),
        ("db.query.text", f"{operation} * FROM {table} WHERE id = ?"),
        ("server.address", f"{system}.internal"),
        ("server.port", 5432),
    )
    return f"{operation} {table}", attrs


def generate(count: int, seed: int = 7) -> Iterator[list[SyntheticSpan]]:
    """Yield whole traces until ``count`` spans have been produced."""
    rng = random.Random(seed)
    names = list(SERVICES)
    produced = 0
    clock = BASE_NS
    while produced < count:
        size = min(rng.randint(5, 40), count - produced)
        trace_id = rng.randbytes(16)
        clock += rng.randrange(1_000_000, 50_000_000)
        root_name, root_attrs = _server(rng, "frontend")
        root = SyntheticSpan(
            trace_id,
            rng.randbytes(8),
            b"",
            "frontend",
            root_name,
            KIND_SERVER,
            clock,
            clock + 90_000_000,
            False,
            root_attrs,
        )
        spans = [root]
        servers = [root]
        while len(spans) < size:
            parent = rng.choice(servers)
            start = parent.start + rng.randrange(1, 1_000_000)
            end = start + rng.randrange(100_000, 5_000_000)
            db = SERVICES[parent.service][1]
            if db is not None and rng.random() < 0.3:
                name, attrs = _db(rng, db)
                spans.append(
                    SyntheticSpan(
                        trace_id,
                        rng.randbytes(8),
                        parent.span_id,
                        parent.service,
                        name,
                        KIND_CLIENT,
                        start,
                        end,
                        False,
                        attrs,
                    )
                )
                continue
            callee = rng.choice(names[1:])
            name, attrs = _client(rng, callee)
            error = rng.random() < 0.02
            client = SyntheticSpan(
                trace_id,
                rng.randbytes(8),
                parent.span_id,
                parent.service,
                name,
                KIND_CLIENT,
                start,
                end,
                error,
                attrs,
            )
            spans.append(client)
            if len(spans) < size:
                name, attrs = _server(rng, callee)
                served = SyntheticSpan(
                    trace_id,
                    rng.randbytes(8),
                    client.span_id,
                    callee,
                    name,
                    KIND_SERVER,
                    start + 1000,
                    end - 1000,
                    error,
                    attrs,
                )
                spans.append(served)
                servers.append(served)
        produced += len(spans)
        yield spans


def _key_value(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _request(spans: list[SyntheticSpan]) -> ExportTraceServiceRequest:
    by_service: dict[str, list[SyntheticSpan]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(span)
    request = ExportTraceServiceRequest()
    for service, members in by_service.items():
        resource_spans: ResourceSpans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            [_key_value("service.name", service), _key_value("service.instance.id", f"{service}-1")]
        )
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "opentelemetry.instrumentation.fastapi"
        for s in members:
            out: Span = scope.spans.add()
            out.trace_id, out.span_id, out.parent_span_id = s.trace_id, s.span_id, s.parent_id
            out.name, out.kind = s.name, s.kind  # type: ignore[assignment]
            out.start_time_unix_nano, out.end_time_unix_nano = s.start, s.end
            if s.error:
                out.status.code = Status.STATUS_CODE_ERROR
            out.attributes.extend([_key_value(k, v) for k, v in s.attributes])
    return request


def _otlp_json_value(value: str | int) -> dict[str, str]:
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}


def _otlp_json_line(request: ExportTraceServiceRequest, spans: list[SyntheticSpan]) -> bytes:
    by_service: dict[str, list[SyntheticSpan]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(span)
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "service.instance.id", "value": {"stringValue": f"{service}-1"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.fastapi"},
                        "spans": [
                            {
                                "traceId": s.trace_id.hex(),
                                "spanId": s.span_id.hex(),
                                "parentSpanId": s.parent_id.hex(),
                                "name": s.name,
                                "kind": s.kind,
                                "startTimeUnixNano": str(s.start),
                                "endTimeUnixNano": str(s.end),
                                "attributes": [
                                    {"key": k, "value": _otlp_json_value(v)} for k, v in s.attributes
                                ],
                                "status": {"code": 2} if s.error else {},
                            }
                            for s in members
                        ],
                    }
                ],
            }
            for service, members in by_service.items()
        ]
    }
    return orjson.dumps(document) + b"\n"


def _jaeger_trace(spans: list[SyntheticSpan]) -> dict[str, Any]:
    processes = {s.service: f"p{i}" for i, s in enumerate({s.service: s for s in spans}.values())}
    return {
        "traceID": spans[0].trace_id.hex(),
        "spans": [
            {
                "traceID": s.trace_id.hex(),
                "spanID": s.span_id.hex(),
                "operationName": s.name,
                "references": [
                    {"refType": "CHILD_OF", "traceID": s.trace_id.hex(), "spanID": s.parent_id.hex()}
                ]
                if s.parent_id
                else [],
                "startTime": s.start // 1000,
                "duration": (s.end - s.start) // 1000,
                "tags": [
                    {"key": k, "type": "int64" if isinstance(v, int) else "string", "value": v}
                    for k, v in s.attributes
                ]
                + [
                    {
                        "key": "span.kind",
                        "type": "string",
                        "value": "server" if s.kind == KIND_SERVER else "client",
                    }
                ]
                + ([{"key": "error", "type": "bool", "value": True}] if s.error else []),
                "processID": processes[s.service],
            }
            for s in spans
        ],
        "processes": {pid: {"serviceName": service, "tags": []} for service, pid in processes.items()},
    }


def write_inputs(count: int, with_jaeger: bool) -> dict[str, Path]:
    """Write the synthetic landscape in every format, reusing files of the same size."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {
        "otlp-proto": DATA / f"spans-{count}.binpb",
        "otlp-json": DATA / f"spans-{count}.jsonl",
    }
    if with_jaeger:
        # Jaeger JSON comes from the query API or the UI's download, a page of traces at a time.
        paths["jaeger-json"] = DATA / f"spans-{count}.jaeger"
    if all(p.exists() for p in paths.values()):
        return paths
    partial = {name: path.with_suffix(path.suffix + ".part") for name, path in paths.items()}
    proto = partial["otlp-proto"].open("wb")
    lines = partial["otlp-json"].open("wb")
    page: list[dict[str, Any]] = []
    if with_jaeger:
        partial["jaeger-json"].mkdir(exist_ok=True)
    batch: list[SyntheticSpan] = []
    pages = 0

    def flush_page() -> None:
        nonlocal pages
        (partial["jaeger-json"] / f"page-{pages:05d}.json").write_bytes(orjson.dumps({"data": page}))
        pages += 1
        page.clear()

    def flush() -> None:
        request = _request(batch)
        body = request.SerializeToString()
        proto.write(struct.pack(">I", len(body)) + body)
        lines.write(_otlp_json_line(request, batch))
        batch.clear()

    for trace in generate(count):
        batch += trace
        if with_jaeger:
            page.append(_jaeger_trace(trace))
            if len(page) >= JAEGER_TRACES_PER_PAGE:
                flush_page()
        if len(batch) >= SPANS_PER_MESSAGE:
            flush()
    if batch:
        flush()
    if page:
        flush_page()
    proto.close()
    lines.close()
    for name, path in partial.items():
        path.replace(paths[name])
    return paths


# --- the bare baseline -------------------------------------------------------------------------------


def bare_loop(path: Path) -> int:
    """Stream the framed file, parse each message and copy ten fields per span into lists."""
    columns: list[list[Any]] = [[] for _ in range(10)]
    trace_ids, span_ids, parents, services, names, kinds, starts, ends, methods, routes = columns
    with path.open("rb") as stream:
        while prefix := stream.read(4):
            (length,) = struct.unpack(">I", prefix)
            # A fresh message per frame: re-parsing into one message keeps growing its upb
            # arena, which would hold every parsed message until the end.
            request = ExportTraceServiceRequest.FromString(stream.read(length))
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        kv.value.string_value
                        for kv in resource_spans.resource.attributes
                        if kv.key == "service.name"
                    ),
                    "unknown",
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        trace_ids.append(span.trace_id.hex())
                        span_ids.append(span.span_id.hex())
                        parents.append(span.parent_span_id.hex())
                        services.append(service)
                        names.append(span.name)
                        kinds.append(span.kind)
                        starts.append(span.start_time_unix_nano)
                        ends.append(span.end_time_unix_nano)
                        method = route = None
                        for kv in span.attributes:
                            if kv.key == "http.request.method":
                                method = kv.value.string_value
                            elif kv.key == "http.route":
                                route = kv.value.string_value
                        methods.append(method)
                        routes.append(route)
    return len(span_ids)


# --- measurement -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One child-process run: wall time, its peak RSS, and the sampled peak PSS of its whole process tree."""

    label: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    tree_peak_mb: float
    output: str


def _tree_pss(root: int) -> int:
    """Proportional resident bytes (PSS) of ``root`` and all its descendants, read from /proc.

    PSS splits each page among the processes that share it: forked workers share the parent's
    pages, and summing their RSS counted those once per process (1M spans: 1.5 GB of summed RSS
    for 1.3 GB of PSS)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss(pid)
        todo += children.get(pid, [])
    return total


def _pss(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(label: str, command: list[str], *, sample_tree: bool = True) -> Measurement:
    """Run ``command`` as a child; its peak RSS comes from the kernel's rusage for that child.

    With ``sample_tree`` the process tree's PSS is sampled every 50 ms, which costs the run
    time: reading ``smaps_rollup`` walks a process's page tables, and on 2 cores the sampling
    made a 10M-span scan 15 % slower. Timed runs leave it off (the tree column is then 0).
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _tree_pss(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_tree:
        sampler.start()
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - started
    done.set()
    if sample_tree:
        sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{label} failed ({child.returncode}): {stderr.decode()[-2000:]}")
    # ru_maxrss over RUSAGE_CHILDREN is the largest single child seen so far; every run is
    # measured in a fresh interpreter below, so it is this run's. CPU time covers the child and
    # its workers: on a shared machine it shows what wall time alone hides.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(label, seconds, cpu, usage.ru_maxrss / 1024, peak / 2**20, stdout.decode())


def _isolated(label: str, command: list[str], *, sample_tree: bool = True) -> Measurement:
    """Measure in a fresh interpreter, so that RUSAGE_CHILDREN holds only this run."""
    script = (
        "import sys, json; sys.path.insert(0, 'benchmarks'); import ingest as b; "
        f"m = b.measure({label!r}, {command!r}, sample_tree={sample_tree!r}); "
        "print(json.dumps([m.label, m.seconds, m.cpu_seconds, m.peak_rss_mb, m.tree_peak_mb, m.output]))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(result.stderr.decode()[-2000:])
    label, seconds, cpu, rss, tree, output = orjson.loads(result.stdout.splitlines()[-1])
    return Measurement(label, seconds, cpu, rss, tree, output)


def main() -> None:
    """Generate inputs, measure baseline and orchscan, print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    parser.add_argument(
        "--formats", default="", help="comma-separated formats to run (default: every format written)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the baseline and each format this often, in turns"
    )
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # the baseline's child-process entry
    args = parser.parse_args()
    if args.bare:
        print(bare_loop(args.bare))
        return
    sys.path.insert(0, str(ROOT))
    from orchscan.collectors.traces.registry import FORMATS

    started = time.perf_counter()
    paths = write_inputs(args.spans, "jaeger-json" in FORMATS)
    print(f"inputs ready in {time.perf_counter() - started:.1f}s under {DATA.relative_to(ROOT)}/", flush=True)
    python = sys.executable
    chosen = [f.strip() for f in args.formats.split(",") if f.strip()] or list(paths)
    for round_ in range(args.repeat):
        # Baseline and runs alternate, so that load from elsewhere hits both alike.
        # Timed runs go unsampled (see measure); in the last round, one more run of each format
        # samples the tree.
        baseline = _isolated(
            "bare loop (otlp-proto, 1 process)",
            [python, __file__, "--bare", str(paths["otlp-proto"])],
            sample_tree=False,
        )
        _report(baseline, paths["otlp-proto"], None, args.spans, header=round_ == 0)
        for fmt in chosen:
            command = [
                python,
                "-m",
                "orchscan",
                "inspect",
                "--json",
                "--no-progress",
                "-j",
                str(args.jobs),
                str(paths[fmt]),
            ]
            label = f"orchscan inspect {fmt} -j {args.jobs}"
            run = _isolated(label, command, sample_tree=False)
            _report(run, paths[fmt], baseline, args.spans, header=False)
            if round_ == args.repeat - 1:
                sampled = _isolated(f"{label}, tree sampled", command)
                _report(sampled, paths[fmt], baseline, args.spans, header=False)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def _report(
    run: Measurement, path: Path, baseline: Measurement | None, expected: int, *, header: bool
) -> None:
    """Print one row of the result table as soon as its run is done."""
    if header:
        print(
            f"{'run':50} {'MB':>6} {'seconds':>8} {'CPU s':>7} {'spans/s':>10} {'x bare':>7} "
            f"{'peak RSS':>9} {'tree peak':>9}"
        )
    spans = int(run.output) if run.output.strip().isdigit() else orjson.loads(run.output)["totals"]["spans"]
    assert spans == expected, f"{run.label}: read {spans} of {expected} spans"
    ratio = run.seconds / baseline.seconds if baseline else 1.0
    print(
        f"{run.label:50} {_size(path) / 2**20:6.0f} {run.seconds:8.2f} {run.cpu_seconds:7.2f} "
        f"{spans / run.seconds:10,.0f} "
        f"{ratio:7.2f} {run.peak_rss_mb:7.0f}MB "
        + (f"{run.tree_peak_mb:7.0f}MB" if run.tree_peak_mb else f"{'-':>9}"),
        flush=True,
    )


if __name__ == "__main__":
    main()
