"""Thresholds from config files and --set overrides, applied over the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchscan.analyzer.thresholds import RoleThresholds
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
