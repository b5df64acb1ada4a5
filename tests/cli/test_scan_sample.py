"""End to end: `orchscan scan` over the recorded sample landscape, compared with its expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result
from paths import ROOT, SAMPLE

from orchscan.cli import main
from orchscan.reports.arazzo.checks import check_references, validate_arazzo
from orchscan.reports.registry import OUTPUTS, REPORTS

EXPECTED = json.loads((SAMPLE / "expected.json").read_text())
SCHEMA = json.loads((ROOT / "reports" / "schemas" / "findings.schema.json").read_text())

# The sample's pitfall names and the rule ids orchscan reports them under.
PITFALL_RULES = {
    "retry-without-idempotency-key": "missing-idempotency",
    "uncompensated-failure": "uncompensated-failure",
    "duplicate-flow": "duplicated-flow",
    "drifted-duplicate-flow": "duplicated-flow",
    "broken-context-propagation": "missing-trace-context",
    "long-running-flow": "unbounded-wait",
}


def scan(out: Path, *extra: str) -> Result:
    args = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"), "--out", str(out), *extra]
    return CliRunner().invoke(main, args)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("scan") / "report"
    result = scan(out)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "findings.json").read_text())


def test_writes_the_default_reports_and_a_schema_valid_document(scanned: tuple[Path, dict[str, Any]]) -> None:
    out, document = scanned
    # The catalog export copies every spec: it, SARIF and JUnit are written only when asked for.
    assert {p.name for p in out.iterdir()} == {"arazzo", "findings.json", "report.html", "summary.md"}
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["input"]["openapi_match_rate"] == 1.0


def test_every_planted_role_is_found(scanned: tuple[Path, dict[str, Any]]) -> None:
    roles = {s["name"]: s["role"] for s in scanned[1]["services"]}
    mismatches = {
        name: (want, roles.get(name)) for name, want in EXPECTED["roles"].items() if roles.get(name) != want
    }
    assert mismatches == {}
    orchestrators = {name for name, role in roles.items() if role == "orchestrator"}
    assert orchestrators == {name for name, role in EXPECTED["roles"].items() if role == "orchestrator"}
    hidden = {s["name"] for s in scanned[1]["services"] if s["hidden"]}
    assert {"orders", "returns"} <= hidden
    assert "mobile-bff" not in hidden and "partner-api" not in hidden


def _flows(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The document's flows of one kind by ``owner entry``."""
    return {f"{f['owner']} {f['entry']['operation']}": f for f in document["flows"] if f["kind"] == kind}


def test_every_expected_flow_with_its_steps(scanned: tuple[Path, dict[str, Any]]) -> None:
    flows = _flows(scanned[1], "orchestrated")
    for expected in EXPECTED["flows"]:
        flow = flows[expected["entry"]]
        assert [f"{s['service']} {s['operation']}" for s in flow["steps"]] == expected["steps"]
        assert flow["entry"]["operation_id"] == expected["operation_id"]


def test_expected_pitfalls_found_without_high_severity_false_positives(
    scanned: tuple[Path, dict[str, Any]],
) -> None:
    findings = scanned[1]["findings"]
    found = {(f["rule"], f["service"]) for f in findings}
    expected = {(PITFALL_RULES[p["kind"]], p["service"]) for p in EXPECTED["pitfalls"]}
    assert expected <= found
    high = {(f["rule"], f["service"]) for f in findings if f["severity"] in ("critical", "high")}
    assert high <= expected


def test_arazzo_drafts_validate_and_reference_real_operations(scanned: tuple[Path, dict[str, Any]]) -> None:
    out, document = scanned
    drafts = sorted((out / "arazzo").glob("*.arazzo.yaml"))
    orchestrated = [f for f in document["flows"] if f["kind"] == "orchestrated"]
    owners = {f["owner"] for f in orchestrated}
    assert {p.name.removesuffix(".arazzo.yaml") for p in drafts} == owners
    for path in drafts:
        draft = yaml.safe_load(path.read_text())
        assert validate_arazzo(draft) == ()
        assert check_references(draft, base=path.parent) == ()
    assert all(f["arazzo"] == f"arazzo/{f['owner']}.arazzo.yaml" for f in orchestrated)
    # An event-driven flow has no single caller whose workflow a draft could describe.
    assert all(f["arazzo"] is None for f in document["flows"] if f["kind"] == "choreographed")


def test_the_brokers_chain_is_mined_as_an_event_driven_flow(scanned: tuple[Path, dict[str, Any]]) -> None:
    flows = _flows(scanned[1], "choreographed")
    assert set(flows) == {e["origin"] for e in EXPECTED["event_flows"]}
    for expected in EXPECTED["event_flows"]:
        flow = flows[expected["origin"]]
        assert flow["requests"] == expected["chains"]
        assert [f"{s['caller']} → {s['service']} {s['operation']}" for s in flow["steps"]] == expected[
            "steps"
        ]
        assert {s["kind"] for s in flow["steps"]} == {"message"}
        assert {s["topic"] for s in flow["steps"]} == {c["topic"] for c in EXPECTED["choreographies"]}
        assert (len({s["parallel_group"] for s in flow["steps"]}) == 1) is expected["parallel"]
        assert sum(f["requests"] for f in flow["failure"]["failed_steps"]) == expected["failures"]


def test_the_planted_parallelisation_opportunity_and_no_other(scanned: tuple[Path, dict[str, Any]]) -> None:
    found = {
        (
            key,
            tuple(
                f"{flow['steps'][i - 1]['service']} {flow['steps'][i - 1]['operation']}" for i in o["steps"]
            ),
        )
        for key, flow in _flows(scanned[1], "orchestrated").items()
        for o in flow["parallel_opportunities"]
    }
    assert found == {(o["flow"], tuple(o["steps"])) for o in EXPECTED["parallel_opportunities"]}
    returns = _flows(scanned[1], "orchestrated")["returns POST /returns"]
    (opportunity,) = returns["parallel_opportunities"]
    assert opportunity["requests"] == 150
    assert 0 < opportunity["saving_ms"]["p50"] <= opportunity["saving_ms"]["p95"]


def test_teams_from_the_owners_file_and_the_cross_team_orchestrators(tmp_path: Path) -> None:
    expected = EXPECTED["teams"]
    result = scan(tmp_path / "teams", "--format", "json", "--owners", str(SAMPLE / expected["owners_file"]))
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "teams" / "findings.json").read_text())
    crossing = {f["service"]: f for f in document["findings"] if f["rule"] == "cross-team-orchestration"}
    assert set(crossing) == set(expected["cross_team_orchestrators"])
    coordinated: dict[str, set[str]] = {}
    for team in document["teams"]:
        for item in team["coordinates"]:
            coordinated.setdefault(item["orchestrator"], set()).add(item["team"])
    for orchestrator, teams in expected["cross_team_orchestrators"].items():
        assert coordinated[orchestrator] == set(teams)
    services = {o["service"] for o in document["ownership"]}
    assert set(expected["without_team"]).isdisjoint(services)
    assert {s["name"] for s in document["services"]} - services == set(expected["without_team"])


def test_output_is_reproducible(tmp_path: Path, scanned: tuple[Path, dict[str, Any]]) -> None:
    out, _ = scanned
    again = tmp_path / "report"
    assert scan(again).exit_code == 0
    for name in ("findings.json", "report.html", "summary.md", "arazzo/orders.arazzo.yaml"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize("name", list(REPORTS))
def test_every_report_format_is_wired(tmp_path: Path, name: str) -> None:
    result = scan(tmp_path / "one", "--format", name)
    assert result.exit_code == 0, result.output
    written = {p.relative_to(tmp_path / "one").parts[0] for p in (tmp_path / "one").rglob("*") if p.is_file()}
    assert written == OUTPUTS[name]


def test_fail_on_sets_the_exit_status(tmp_path: Path) -> None:
    assert scan(tmp_path / "a", "--format", "json", "--fail-on", "high").exit_code == 1
    assert scan(tmp_path / "b", "--format", "json", "--fail-on", "critical").exit_code == 0


def test_unknown_threshold_is_a_usage_error(tmp_path: Path) -> None:
    result = scan(tmp_path / "c", "--format", "json", "--set", "roles.no_such_threshold=1")
    assert result.exit_code == 2
    assert "no_such_threshold" in result.output


def test_conform_reports_drift_of_a_documented_workflow(
    tmp_path: Path, scanned: tuple[Path, dict[str, Any]]
) -> None:
    out, _ = scanned
    document = yaml.safe_load((out / "arazzo" / "orders.arazzo.yaml").read_text())
    workflow = document["workflows"][0]
    by_id = {step["stepId"]: step for step in workflow["steps"]}
    # The team's copy: payment before inventory, and no notification step.
    workflow["steps"] = [by_id["authorizePayment"], by_id["reserveStock"], by_id["createShipment"]]
    for step in workflow["steps"]:
        step.pop("onFailure", None)
    workflow.pop("outputs", None)
    drifted = tmp_path / "orders.arazzo.yaml"
    drifted.write_text(yaml.safe_dump(document, sort_keys=False))
    args = [
        "conform",
        "--arazzo",
        str(drifted),
        str(SAMPLE / "traces"),
        "--openapi",
        str(SAMPLE / "openapi"),
        "--out",
        str(tmp_path / "conform"),
        "--format",
        "json",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    findings = json.loads((tmp_path / "conform" / "findings.json").read_text())["findings"]
    drift = [f["message"] for f in findings if f["rule"] == "workflow-drift"]
    assert any("notification POST /notifications" in m and "missing from workflow" in m for m in drift)
    assert any("orders its steps differently" in m for m in drift)


def test_conform_refuses_an_unreadable_document_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken.arazzo.yaml"
    bad.write_text("arazzo: [unclosed\n")
    args = ["conform", "--arazzo", str(bad), str(SAMPLE / "traces"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "broken.arazzo.yaml" in result.output


def test_the_terminal_counts_services_as_the_reports_do(tmp_path: Path) -> None:
    """Services are those that emitted spans, everywhere; peers known only from calls are named apart."""
    result = scan(tmp_path / "o", "--format", "json,markdown")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "o" / "findings.json").read_text())
    services = document["input"]["services"]
    peers = len(document["services"]) - services
    assert services == len(EXPECTED["roles"]) - 1 and peers == 2  # approvals is not instrumented; sqlite
    first = result.stdout.splitlines()[0]
    assert f", {services} services and {peers} peer(s) seen only in calls; roles: " in first
    roles = [int(part.split()[0]) for part in first.split("; roles: ")[1].split(", ")]
    assert sum(roles) == len(document["services"])
    assert f"{services} services" in (tmp_path / "o" / "summary.md").read_text()


def test_written_files_are_named_as_the_user_gave_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["scan", str(SAMPLE / "traces"), "--out", "rel/out", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote rel/out/findings.json" in result.stdout.splitlines()
