"""Record the sample landscape: start the shop services, drive seeded traffic, write the traces.

    python sample_traces/record.py --out sample_traces

needs the ``[sample]`` extra of orchscan (FastAPI, uvicorn, httpx and the OpenTelemetry SDK
with its exporters and instrumentations). See sample_traces/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shop.broker import Broker  # noqa: E402
from shop.env import Env, Settings  # noqa: E402
from shop.export import service_of, write_all  # noqa: E402
from shop.landscape import Landscape  # noqa: E402
from shop.telemetry import Telemetry, configure_environment  # noqa: E402
from shop.traffic import Driver, Mix  # noqa: E402

MANIFEST_VERSION = 1
PRODUCERS = (
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-exporter-zipkin-json",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-sqlite3",
    "fastapi",
    "uvicorn",
    "httpx",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: where to write, how much traffic of each kind, the approval wait."""
    defaults = Mix()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: sample_traces/)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the traffic mix")
    for name in ("orders", "mobile", "partner", "gateway", "pages", "returns", "invoices", "lookups"):
        parser.add_argument(
            f"--{name}",
            type=int,
            default=getattr(defaults, name),
            help=f"requests of kind '{name}' (default {getattr(defaults, name)})",
        )
    parser.add_argument(
        "--approval-wait",
        type=float,
        default=3.0,
        help="seconds until the external desk approves a return (default 3)",
    )
    parser.add_argument("--concurrency", type=int, default=12, help="requests in flight at once")
    return parser.parse_args(argv)


def write_openapi(out: Path, specs: dict[str, dict[str, Any]]) -> list[str]:
    """Each service's generated OpenAPI document, marked with its service.name."""
    folder = out / "openapi"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for service, spec in sorted(specs.items()):
        document = {"openapi": spec["openapi"], "x-service-name": service, **spec}
        (folder / f"{service}.json").write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        written.append(f"openapi/{service}.json")
    return written


def record(args: argparse.Namespace) -> dict[str, Any]:
    """Run the landscape with the requested traffic and write traces, specs and the manifest."""
    configure_environment()
    mix = Mix(
        orders=args.orders,
        mobile=args.mobile,
        partner=args.partner,
        gateway=args.gateway,
        pages=args.pages,
        returns=args.returns,
        invoices=args.invoices,
        lookups=args.lookups,
    )
    telemetry = Telemetry()
    broker = Broker()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shop-data-") as data:
        env = Env(telemetry, broker, Path(data), Settings(approval_wait=args.approval_wait))
        with Landscape(env) as landscape:
            driver = Driver(env, mix, args.seed, args.concurrency)
            asyncio.run(driver.run())
            specs = {name: app.openapi() for name, app in landscape.apps.items()}
        spans = telemetry.finished_spans()
        telemetry.shutdown()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    files = write_all(out, spans)
    per_service = Counter(service_of(span) for span in spans)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "producers": {name: metadata.version(name) for name in PRODUCERS},
        "settings": {
            "seed": args.seed,
            "approval_wait_seconds": args.approval_wait,
            "concurrency": args.concurrency,
            "mix": mix.as_dict(),
        },
        "files": [
            {
                "path": f.path,
                "format": f.format,
                "encoder": f.encoder,
                "spans": f.spans,
                "traces": f.traces,
                "services": list(f.services),
            }
            for f in files
        ],
        "openapi": write_openapi(out, specs),
        "services": dict(sorted(per_service.items())),
        "patterns": {
            "responses": driver.summary(),
            "events": {
                "order-placed": {"published": broker.published, "deliveries_processed": broker.processed}
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"recorded {len(spans)} spans in {files[0].traces} traces "
        f"in {time.monotonic() - started:.1f} s -> {out}",
        file=sys.stderr,
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    record(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
