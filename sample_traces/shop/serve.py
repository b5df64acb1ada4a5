"""Run the sample services for someone else's requests: start them, hand out their URLs, stop them.

    cd sample_traces && python -m shop.serve --data-dir /tmp/shop

prints one JSON line ``{"urls": {service: url}, "data_dir": ...}`` once every service listens,
then serves until its standard input closes, and stops every service before it exits. Tests run
it as a child process, so the services keep their own interpreter, environment and event loops.
Each service keeps its state in ``<data-dir>/<service>.db`` (SQLite), which callers may read.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from shop.broker import Broker
from shop.env import Env, Settings
from shop.landscape import Landscape
from shop.telemetry import Telemetry, configure_environment

#: No transient failures: a request fails only when its own data says so (a ``tok_declined_*``
#: card, a ZIP code starting with ``99``, an unknown id), so a run is repeatable.
DETERMINISTIC = Settings(carrier="never")


@dataclass(frozen=True)
class Serving:
    """Where the running services listen and where they keep their data."""

    urls: dict[str, str]
    data_dir: Path


@contextmanager
def serve(settings: Settings = DETERMINISTIC, data_dir: Path | None = None) -> Iterator[Serving]:
    """Start every HTTP service and the event consumers on 127.0.0.1 and stop them on exit."""
    configure_environment()
    telemetry = Telemetry()
    with tempfile.TemporaryDirectory(prefix="shop-data-") as scratch:
        folder = data_dir if data_dir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        env = Env(telemetry, Broker(), folder, settings)
        try:
            with Landscape(env):
                yield Serving(dict(env.urls), folder)
        finally:
            telemetry.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Serve until standard input closes, so the services stop when their caller goes away."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="where the services keep their SQLite files")
    parser.add_argument(
        "--carrier",
        choices=("never", "once", "sometimes"),
        default=DETERMINISTIC.carrier,
        help="when shipping's carrier is busy: never (default), once per reservation, "
        "or sometimes as in the recorded traffic",
    )
    args = parser.parse_args(argv)
    settings = replace(DETERMINISTIC, carrier=args.carrier)
    with serve(settings, args.data_dir) as serving:
        print(json.dumps({"urls": serving.urls, "data_dir": str(serving.data_dir)}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
