"""The Arazzo acid test: a real runner executes the drafted orders workflow against the live services.

`orchscan scan` drafts the workflow from the committed sample traces; Redocly Respect (pinned in
``ci-tools/package.json``) runs it against the sample landscape's own FastAPI services, which
``sample_traces/shop/serve.py`` starts in a child process on free ports of 127.0.0.1. The
assertions check the runner's verdict and, in the services' own SQLite state, that the values
the draft hands from step to step really arrived where the traces said they go.

Under CI (``CI=true``) a missing Node.js or Redocly fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from paths import ROOT, SAMPLE

from orchscan.cli import main

pytestmark = pytest.mark.slow

CI_TOOLS = ROOT / "ci-tools"
REDOCLY = CI_TOOLS / "node_modules" / ".bin" / "redocly"
STARTUP_SECONDS = 60.0
RUN_SECONDS = 60.0

# One order as the sample's traffic driver sends it (shop/traffic.py, Driver._order) and as
# orders passes it on (shop/orchestrators.py: orderId "ord-NNNNNN", amount = quantity x 19.99,
# template "order-confirmation"); the draft's required inputs are looked up here by name.
ORDER = {
    "customerId": "c-0042",
    "items": [{"sku": "sku-007", "quantity": 2}, {"sku": "sku-031", "quantity": 1}],
    "cardToken": "tok_visa_4242",
    "address": {"name": "A. Customer", "street": "Hauptstr. 17", "zip": "10115"},
    "amount": 59.97,
    "template": "order-confirmation",
}
DECLINED_CARD = "tok_declined_4242"


@dataclass(frozen=True)
class Draft:
    """The drafted orders workflow on disk and what the runner needs to call it."""

    path: Path
    workflow: dict[str, Any]
    servers: dict[str, str]  # source description name -> service name (the spec's x-service-name)


@dataclass(frozen=True)
class Services:
    """The running sample services: their base URLs and the folder with their SQLite files."""

    urls: dict[str, str]
    data_dir: Path


@dataclass(frozen=True)
class Call:
    """One HTTP exchange the runner had, from its HAR log."""

    service: str
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class Run:
    """One Respect run: exit code, console output, the steps it reported and every call it made."""

    returncode: int
    output: str
    workflow: dict[str, Any]
    calls: list[Call]

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The executed steps (a retried step appears once per attempt)."""
        return list(self.workflow["executedSteps"])

    def step(self, step_id: str) -> dict[str, Any]:
        """The last attempt of one step."""
        return [s for s in self.steps if s["stepId"] == step_id][-1]


def _redocly() -> Path:
    missing = [
        reason
        for reason, absent in (
            ("node is not on PATH", shutil.which("node") is None),
            (f"{REDOCLY} missing: run `npm ci` in {CI_TOOLS}", not REDOCLY.exists()),
        )
        if absent
    ]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    return REDOCLY


@pytest.fixture(scope="module")
def draft(tmp_path_factory: pytest.TempPathFactory) -> Draft:
    """The orders workflow exactly as `orchscan scan --format arazzo` drafts it from the sample."""
    _redocly()
    out = tmp_path_factory.mktemp("respect") / "scan"
    args = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi")]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--format", "arazzo"])
    assert result.exit_code == 0, result.output
    path = out / "arazzo" / "orders.arazzo.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    (workflow,) = [w for w in document["workflows"] if w["x-orchscan-flow"]["entry"] == "POST /orders"]
    servers = {}
    for source in document["sourceDescriptions"]:
        spec = json.loads((path.parent / source["url"]).read_text(encoding="utf-8"))
        servers[source["name"]] = spec["x-service-name"]
    return Draft(path, workflow, servers)


@contextmanager
def running(folder: Path, carrier: str) -> Iterator[Services]:
    """The sample services in a child process, stopped (and killed if need be) whatever happens."""
    log = (folder / "serve.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "shop.serve", "--data-dir", str(folder / "data"), "--carrier", carrier],
        cwd=SAMPLE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        ready, _, _ = select.select([child.stdout], [], [], STARTUP_SECONDS)
        line = child.stdout.readline() if ready else ""
        if not line:
            log.flush()
            pytest.fail(f"the sample services did not start: {(folder / 'serve.log').read_text()}")
        announced = json.loads(line)
        yield Services(announced["urls"], Path(announced["data_dir"]))
    finally:
        # Closing stdin is the child's signal to stop its servers; kill it only if it hangs.
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        log.close()


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Services whose carrier is never busy: a request fails only if its own data says so."""
    _redocly()
    with running(tmp_path_factory.mktemp("steady"), "never") as services:
        yield services


def respect(draft: Draft, services: Services, inputs: dict[str, Any], out: Path) -> Run:
    """Run the drafted workflow with Redocly Respect and read its JSON and HAR logs."""
    log, har = out / "respect.json", out / "respect.har"
    servers = [f"--server={name}={services.urls[service]}" for name, service in draft.servers.items()]
    done = subprocess.run(
        [
            str(_redocly()),
            "respect",
            str(draft.path),
            "--workflow",
            draft.workflow["workflowId"],
            *servers,
            "--input",
            json.dumps(inputs),
            "--json-output",
            str(log),
            "--har-output",
            str(har),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
        cwd=out,
        env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
    )
    output = done.stdout + done.stderr
    assert log.exists(), output
    report = json.loads(log.read_text(encoding="utf-8"))
    (file,) = report["files"].values()
    (workflow,) = file["executedWorkflows"]
    # The JSON log leaves out steps reached through a goto; the HAR log has every request.
    service_at = {url: service for service, url in services.urls.items()}
    calls = []
    for entry in json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]:
        url = urlsplit(entry["request"]["url"])
        service = service_at[f"{url.scheme}://{url.netloc}"]
        calls.append(Call(service, entry["request"]["method"], url.path, entry["response"]["status"]))
    return Run(done.returncode, output, workflow, calls)


def inputs_for(draft: Draft, order_id: str, **overrides: Any) -> dict[str, Any]:
    """Values for every input the draft requires, from the example order."""
    examples = {**ORDER, "orderId": order_id, **overrides}
    required = draft.workflow["inputs"].get("required", [])
    unknown = sorted(set(required) - set(examples))
    assert unknown == [], f"the draft requires inputs the sample traffic never sends: {unknown}"
    return {name: examples[name] for name in required}


def rows(services: Services, service: str, query: str, *parameters: str) -> list[tuple[Any, ...]]:
    """Rows of a service's own database, read-only."""
    uri = (services.data_dir / f"{service}.db").as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        return db.execute(query, parameters).fetchall()


def test_drafted_order_workflow_passes_and_hands_ids_on(
    draft: Draft, steady: Services, tmp_path: Path
) -> None:
    run = respect(draft, steady, inputs_for(draft, "ord-700001"), tmp_path)

    assert run.returncode == 0, run.output
    assert run.workflow["status"] == "success", run.output
    reservation = run.step("reserveStock")["response"]["body"]["reservationId"]
    payment = run.step("authorizePayment")["response"]["body"]["paymentId"]
    shipment = run.step("createShipment")["response"]["body"]["shipmentId"]
    assert run.calls == [
        Call("inventory", "POST", "/reservations", 201),
        Call("payment", "POST", "/payments", 201),
        Call("shipping", "POST", "/shipments", 201),
        Call("notification", "POST", "/notifications", 202),
    ]
    # What inventory and payment handed out is what shipping stored next to the order.
    assert rows(
        steady, "inventory", "SELECT DISTINCT id FROM reservation WHERE order_id = ?", "ord-700001"
    ) == [(reservation,)]
    assert rows(steady, "payment", "SELECT id, status FROM payment WHERE order_id = ?", "ord-700001") == [
        (payment, "authorized")
    ]
    assert rows(
        steady,
        "shipping",
        "SELECT id, reservation_id, payment_id FROM shipment WHERE order_id = ?",
        "ord-700001",
    ) == [(shipment, reservation, payment)]
    # Notification keeps no state; the runner's log shows what it was sent.
    sent = run.step("sendNotification")["request"]["body"]
    assert (sent["shipmentId"], sent["orderId"], sent["customerId"]) == (shipment, "ord-700001", "c-0042")


def test_drafted_compensation_releases_the_reservation_of_a_declined_payment(
    draft: Draft, steady: Services, tmp_path: Path
) -> None:
    run = respect(draft, steady, inputs_for(draft, "ord-700002", cardToken=DECLINED_CARD), tmp_path)

    # Respect reports this run as failed whatever the draft says: a step whose success criteria
    # fail is a failed check even when an onFailure action handles it. So the path is judged by
    # the calls the runner made and by what they changed.
    reservation = run.step("reserveStock")["response"]["body"]["reservationId"]
    assert run.calls == [
        Call("inventory", "POST", "/reservations", 201),
        Call("payment", "POST", "/payments", 402),
        Call("inventory", "DELETE", f"/reservations/{reservation}", 204),
    ], run.output
    assert rows(
        steady, "inventory", "SELECT DISTINCT id, status FROM reservation WHERE order_id = ?", "ord-700002"
    ) == [(reservation, "released")]
    assert rows(steady, "payment", "SELECT id FROM payment WHERE order_id = ?", "ord-700002") == []
    assert rows(steady, "shipping", "SELECT id FROM shipment WHERE order_id = ?", "ord-700002") == []


def test_drafted_retry_rides_out_a_busy_carrier(draft: Draft, tmp_path: Path) -> None:
    with running(tmp_path, "once") as busy:
        run = respect(draft, busy, inputs_for(draft, "ord-700003"), tmp_path)

        assert run.returncode == 0, run.output
        assert run.workflow["status"] == "success", run.output
        assert [c for c in run.calls if c.service == "shipping"] == [
            Call("shipping", "POST", "/shipments", 503),
            Call("shipping", "POST", "/shipments", 201),
        ], run.output
        reservation = run.step("reserveStock")["response"]["body"]["reservationId"]
        assert rows(
            busy, "shipping", "SELECT reservation_id FROM shipment WHERE order_id = ?", "ord-700003"
        ) == [(reservation,)]
