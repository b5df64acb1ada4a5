"""The drafts of a whole scan: whole, movable, one file per orchestrator, only where evidence allows.

Scans of the sample landscape and of the real fixtures, with and without OpenAPI specs. Every
step of every draft must name an operation its source description really has, after the output
folder has been moved away from where it was written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from paths import FIXTURES, SAMPLE
from renamed_sample import HOSTILE_NAMES, renamed_sample, sample_ingest

from orchscan.analyzer.pipeline import analyze
from orchscan.cli import main
from orchscan.reports.arazzo.checks import check_references, validate_arazzo
from orchscan.reports.arazzo.draft_set import draft_workflows
from orchscan.reports.names import FILE_NAMES
from orchscan.reports.output import write_artifact
from orchscan.reports.registry import REPORTS, report_context

REAL_FIXTURES = ("hotrod", "opentelemetry-demo", "spring-petclinic", "zipkin-lens-testdata")

SCANS = {
    "sample": [str(SAMPLE / "traces")],
    "sample+openapi": [str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi")],
    "hotrod": [str(FIXTURES / "hotrod" / "traces")],
    "hotrod+unrelated-specs": [str(FIXTURES / "hotrod" / "traces"), "--openapi", str(FIXTURES / "specs")],
}


def _scan(out: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["scan", *args, "--out", str(out), "--format", "arazzo,json"])
    assert result.exit_code == 0, result.output
    findings: dict[str, Any] = json.loads((out / "findings.json").read_text())
    return findings


@pytest.fixture(scope="module", params=sorted(SCANS))
def moved(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """A scan's output folder, moved after writing, with its findings."""
    written = tmp_path_factory.mktemp("written") / "out"
    findings = _scan(written, *SCANS[request.param])
    target = tmp_path_factory.mktemp("moved") / "elsewhere"
    shutil.move(written, target)
    return target, findings


def test_every_step_resolves_in_its_source_description_after_a_move(
    moved: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = moved
    drafts = sorted((out / "arazzo").glob("*.arazzo.yaml"))
    assert drafts
    steps = 0
    for path in drafts:
        document = yaml.safe_load(path.read_text())
        assert validate_arazzo(document) == ()
        assert check_references(document, base=path.parent) == (), path.name
        for source in document["sourceDescriptions"]:
            assert not source["url"].startswith(("/", "..")), source
        steps += sum(len(w["steps"]) for w in document["workflows"])
    assert steps >= 2 * len(drafts)


def test_findings_point_each_flow_at_the_draft_that_holds_it(moved: tuple[Path, dict[str, Any]]) -> None:
    out, findings = moved
    drafted = [f for f in findings["flows"] if f["arazzo"] is not None]
    assert drafted
    for flow in drafted:
        document = yaml.safe_load((out / flow["arazzo"]).read_text())
        assert flow["id"] in {w["x-orchscan-flow"]["id"] for w in document["workflows"]}
    written = {p.relative_to(out).as_posix() for p in (out / "arazzo").glob("*.arazzo.yaml")}
    assert written == {f["arazzo"] for f in drafted}


def test_one_stand_in_per_service_without_a_spec_serves_every_draft(
    moved: tuple[Path, dict[str, Any]],
) -> None:
    out, findings = moved
    stand_ins = sorted((out / "arazzo").glob("*.inferred.openapi.yaml"))
    services = [yaml.safe_load(p.read_text())["x-service-name"] for p in stand_ins]
    assert len(services) == len(set(services))
    documented = {c["service"] for c in findings["coverage"]}
    assert not documented & set(services)
    assert stand_ins or documented


def test_specs_are_copied_beside_the_drafts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _scan(out, *SCANS["sample+openapi"])
    copied = out / "arazzo" / "openapi" / "inventory" / "inventory.json"
    assert copied.read_bytes() == (SAMPLE / "openapi" / "inventory.json").read_bytes()
    assert not list((out / "arazzo").glob("*.inferred.openapi.yaml"))


def test_a_spec_split_over_files_is_copied_with_the_files_it_refers_to(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(SAMPLE / "openapi", specs)
    inventory = json.loads((specs / "inventory.json").read_text())
    (specs / "inventory.json").unlink()
    (specs / "schemas").mkdir()
    (specs / "schemas" / "components.json").write_text(
        json.dumps({"components": inventory.pop("components")})
    )
    text = json.dumps(inventory).replace('"#/components/', '"schemas/components.json#/components/')
    # A file name that is no safe URL: the copy keeps it, the source description escapes it.
    (specs / "inventory spec.json").write_text(text)
    out = tmp_path / "out"
    _scan(out, str(SAMPLE / "traces"), "--openapi", str(specs))
    (copy,) = [p for p in (out / "arazzo" / "openapi").iterdir() if p.name.startswith("inventory-spec-")]
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == [
        "inventory spec.json",
        "schemas/components.json",
    ]
    document = yaml.safe_load((out / "arazzo" / "orders.arazzo.yaml").read_text())
    urls = {source["name"]: source["url"] for source in document["sourceDescriptions"]}
    assert urls["inventory"] == f"openapi/{copy.name}/inventory%20spec.json"
    for path in (out / "arazzo").glob("*.arazzo.yaml"):
        assert check_references(yaml.safe_load(path.read_text()), base=path.parent) == ()


def test_real_fixtures_together_have_no_orchestrator_and_get_no_draft(tmp_path: Path) -> None:
    findings = _scan(tmp_path / "out", *(str(FIXTURES / name / "traces") for name in REAL_FIXTURES))
    assert findings["flows"]
    assert not any(s["role"] == "orchestrator" for s in findings["services"])
    assert [f["arazzo"] for f in findings["flows"]] == [None] * len(findings["flows"])
    assert not (tmp_path / "out" / "arazzo").exists()


def test_hotrods_three_requests_are_judged_and_the_threshold_can_withhold_them(tmp_path: Path) -> None:
    findings = _scan(tmp_path / "a", *SCANS["hotrod"])
    assert [(f["owner"], f["requests"], f["arazzo"]) for f in findings["flows"]] == [
        ("frontend", 3, "arazzo/frontend.arazzo.yaml")
    ]
    # Below the threshold the flow is only observed: no claim, no draft.
    stricter = _scan(tmp_path / "b", *SCANS["hotrod"], "--set", "flows.evidence_min_requests=4")
    assert stricter["flows"] == []
    assert [(f["owner"], f["verdict"], f["arazzo"]) for f in stricter["observed_flows"]] == [
        ("frontend", "too-little-evidence", None)
    ]
    fewer_steps = _scan(tmp_path / "c", *SCANS["hotrod"], "--set", "flows.evidence_min_steps=99")
    assert fewer_steps["flows"] == [] and len(fewer_steps["observed_flows"]) == 1


# --- orchestrators whose names collide as file names --------------------------------------


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_orchestrators_whose_names_collide_as_files_keep_one_draft_each(tmp_path: Path, case: str) -> None:
    renames = HOSTILE_NAMES[case]
    context = report_context(analyze(renamed_sample(renames)), None)
    for name in ("arazzo", "json"):
        for relative, content in REPORTS[name](context).items():
            write_artifact(tmp_path / relative, content)
    drafts = sorted((tmp_path / "arazzo").glob("*.arazzo.yaml"))
    assert len(drafts) == len(renames)
    assert len({p.name.casefold() for p in drafts}) == len(drafts)
    assert all(len(p.name) <= FILE_NAMES.max_length + len(".arazzo.yaml") for p in drafts)
    owners = {}
    for path in drafts:
        text = path.read_text(encoding="utf-8")
        assert not any(ch in text for ch in "\u202e\x1b")
        document = yaml.safe_load(text)
        assert check_references(document, base=path.parent) == ()
        owners[document["x-orchscan-owner"]] = path.relative_to(tmp_path).as_posix()
    assert set(owners) == set(renames.values())
    findings = json.loads((tmp_path / "findings.json").read_text())
    drafted = {
        f["owner"]: f["arazzo"]
        for f in findings["flows"]
        if f["owner"] in owners and f["kind"] == "orchestrated"
    }
    assert drafted == owners


def test_a_new_owner_spelled_like_another_in_other_case_renames_no_existing_draft() -> None:
    plain = draft_workflows(analyze(sample_ingest()), None)
    renamed = analyze(renamed_sample({"returns": "Orders"}))
    crowded = draft_workflows(renamed, None)
    before = {d.owner: d.path.as_posix() for d in plain.drafts}
    after = {d.owner: d.path.as_posix() for d in crowded.drafts}
    assert after["orders"] == before["orders"] == "arazzo/orders.arazzo.yaml"
    assert after["mobile-bff"] == before["mobile-bff"]
    assert after["Orders"].startswith("arazzo/Orders-") and after["Orders"].casefold() != after["orders"]
