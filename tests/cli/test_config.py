"""Thresholds from config files and --set overrides, applied over the documented defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from factories import LandscapeBuilder

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.thresholds import RANGES, CallThresholds, FlowThresholds, RoleThresholds, Thresholds
from orchscan.collectors.model.records import Ingest
from orchscan.config import ConfigError, build_thresholds, load_config_file, merge, parse_overrides


def test_toml_and_override_layers_apply_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "orchscan.toml"
    config.write_text("[roles]\nhub_z = 3.5\ngateway_min_fan_out = 5\n")
    values = merge(load_config_file(config), parse_overrides(["roles.hub_z=2.5"]))
    thresholds = build_thresholds(RoleThresholds, "roles", values["roles"])
    assert thresholds.hub_z == 2.5
    assert thresholds.gateway_min_fan_out == 5
    assert thresholds.min_spread == RoleThresholds().min_spread


def test_yaml_config_is_read_safely(tmp_path: Path) -> None:
    config = tmp_path / "orchscan.yaml"
    config.write_text("roles:\n  hub_z: 4\n")
    assert build_thresholds(RoleThresholds, "roles", load_config_file(config)["roles"]).hub_z == 4.0
    config.write_text("roles: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"orchscan\.yaml"):
        load_config_file(config)


def test_unknown_names_and_bad_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown roles threshold.*hub_zz"):
        build_thresholds(RoleThresholds, "roles", {"hub_zz": 1})
    with pytest.raises(ConfigError, match=r"roles\.hub_z: expected float"):
        build_thresholds(RoleThresholds, "roles", {"hub_z": "high"})
    with pytest.raises(ConfigError, match=r"group\.name=value"):
        parse_overrides(["hub_z=3"])


@pytest.mark.parametrize(
    ("group", "kind"),
    [("calls", CallThresholds), ("roles", RoleThresholds), ("flows", FlowThresholds)],
    ids=["calls", "roles", "flows"],
)
def test_every_threshold_has_a_range_its_default_lies_in(group: str, kind: type) -> None:
    ranges = RANGES[group]
    names = {f.name for f in dataclasses.fields(kind)}
    assert set(ranges) == names
    defaults = kind()
    for name, (low, high) in ranges.items():
        assert low <= getattr(defaults, name) <= high, name


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("roles.hub_z=nan", r"roles\.hub_z: expected a finite number, got 'nan'"),
        ("roles.hub_z=.inf", r"roles\.hub_z: expected a finite number"),
        ("roles.hub_z=1e999", r"roles\.hub_z: expected a finite number"),
        ("roles.hub_z=-1", r"roles\.hub_z: must be at least 0, got -1"),
        ("roles.min_operation_share=1.5", r"min_operation_share: must be between 0 and 1, got 1\.5"),
        ("roles.hub_z=true", r"roles\.hub_z: expected float, got True"),
        ("flows.min_steps=2.7", r"flows\.min_steps: expected int, got 2\.7"),
        ("flows.min_steps=0", r"flows\.min_steps: must be at least 1, got 0"),
    ],
)
def test_values_outside_their_range_are_refused(pair: str, message: str) -> None:
    values = parse_overrides([pair])
    group, values = next(iter(values.items()))
    kind = {"roles": RoleThresholds, "flows": FlowThresholds}[group]
    with pytest.raises(ConfigError, match=message):
        build_thresholds(kind, group, values)


def test_whole_numbers_are_accepted_for_counts_and_floats() -> None:
    assert build_thresholds(FlowThresholds, "flows", {"min_steps": 4.0}).min_steps == 4
    assert build_thresholds(RoleThresholds, "roles", {"hub_z": 3}).hub_z == 3.0


def test_one_overlap_tolerance_times_calls_for_roles_and_flows(tmp_path: Path) -> None:
    # Each call overlaps the next by 3 ms: within a 5 ms tolerance they run one after the other,
    # within 1 ms they overlap; role behaviour and flow blocks must agree either way.
    land = LandscapeBuilder()
    for _ in range(4):
        order = land.trace().request("orders", "POST /orders", ms=200)
        for i, callee in enumerate(("inventory", "payment", "shipping")):
            order.call(callee, f"POST /{callee}", at=10 + 40 * i, ms=43)
    table = land.table()
    strict = Thresholds(calls=CallThresholds(overlap_tolerance_ms=1.0))
    loose = Thresholds(calls=CallThresholds(overlap_tolerance_ms=5.0))
    results = {}
    for name, thresholds in (("strict", strict), ("loose", loose)):
        analysis = analyze(Ingest(table, (), (), ()), thresholds=thresholds).analysis
        results[name] = analysis
    role = {name: next(s for s in a.services if s.name == "orders") for name, a in results.items()}
    assert role["loose"].role == "orchestrator" and role["strict"].role != "orchestrator"
    (flow,) = results["loose"].flows
    assert [s.parallel_group for s in flow.steps] == [None, None, None]
    assert not results["strict"].flows  # one block of overlapping calls: nothing to coordinate
    # The old per-stage copies are gone: asking for one is an error, not a silent no-op.
    with pytest.raises(ConfigError, match=r"unknown roles threshold.*overlap_tolerance_ms"):
        build_thresholds(RoleThresholds, "roles", {"overlap_tolerance_ms": 5.0})
    with pytest.raises(ConfigError, match=r"unknown flows threshold.*overlap_tolerance_ms"):
        build_thresholds(FlowThresholds, "flows", {"overlap_tolerance_ms": 5.0})
