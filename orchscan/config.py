"""Thresholds from a config file and the command line, applied to the analyzer's dataclasses.

A config file (TOML or YAML) has one table per threshold group, named like the CLI prefix:

    [roles]
    min_dependent_calls = 3
    [flows]
    long_running_s = 120

``--set roles.min_dependent_calls=4`` overrides a single value. Unknown names are errors, so a
typo never silently falls back to a default, and every value must be a finite number of the
threshold's type inside its documented range (:data:`orchscan.analyzer.thresholds.RANGES`): a
``nan`` threshold compares false with everything and would quietly find nothing.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orchscan.analyzer.thresholds import RANGES
from orchscan.exits import UnusableInput

T = TypeVar("T")


class ConfigError(UnusableInput, ValueError):
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
        coerced[name] = _coerce(f"{group}.{name}", default, value, RANGES.get(group, {}).get(name))
    return kind(**coerced)


def _coerce(name: str, default: Any, value: Any, bounds: tuple[float, float] | None) -> Any:
    """``value`` as the type of ``default``, finite and within ``bounds``, or a ConfigError."""
    if isinstance(default, bool):
        try:
            return _as_bool(value)
        except ValueError:
            raise ConfigError(f"{name}: expected true or false, got {value!r}") from None
    number = _as_number(value)
    if number is None or (isinstance(default, int) and not float(number).is_integer()):
        raise ConfigError(f"{name}: expected {type(default).__name__}, got {value!r}")
    if not math.isfinite(number):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    low, high = bounds if bounds is not None else (-math.inf, math.inf)
    if not low <= number <= high:
        limit = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ConfigError(f"{name}: must be {limit}, got {value!r}")
    return type(default)(number)


def _as_number(value: Any) -> float | None:
    # bool is an int subclass: `hub_z = true` is a mistake, not 1.0.
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "1", "on"):
        return True
    if str(value).lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError(value)
