"""Thresholds from a config file and the command line, applied to the analyzer's dataclasses.

A config file (TOML or YAML) has one table per threshold group, named like the CLI prefix:

    [roles]
    min_dependent_calls = 3
    [flows]
    long_running_s = 120

``--set roles.min_dependent_calls=4`` overrides a single value. Unknown names are errors, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that cannot be applied."""


def load_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a TOML or YAML config file into ``{group: {name: value}}``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: malformed config: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected tables of thresholds, e.g. [roles] and [flows]")
    return data


def parse_overrides(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Turn ``group.name=value`` strings into ``{group: {name: value}}`` (values parsed as YAML scalars)."""
    result: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        group, dot, key = name.strip().partition(".")
        if not sep or not dot or not key:
            raise ConfigError(f"--set expects group.name=value, got {pair!r}")
        result.setdefault(group, {})[key] = yaml.safe_load(value)
    return result


def merge(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers win, value by value."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for group, values in layer.items():
            merged.setdefault(group, {}).update(values)
    return merged


def build_thresholds(kind: type[T], group: str, values: Mapping[str, Any]) -> T:
    """An instance of the thresholds dataclass ``kind`` with ``values`` applied over its defaults."""
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown {group} threshold(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(kind(), name)
        try:
            coerced[name] = type(default)(value) if not isinstance(default, bool) else _as_bool(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{group}.{name}: expected {type(default).__name__}, got {value!r}") from None
    return kind(**coerced)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "1", "on"):
        return True
    if str(value).lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError(value)
