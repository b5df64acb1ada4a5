"""Decide which spec describes which traced service.

Evidence is tried strongest first: an explicit mapping file, the spec's ``x-service-name``, the
host names of its servers, then its title and file name. Names are compared normalised (lower
case, punctuation and filler words such as "api" and "service" removed) because traces say
``catalog-api`` where the spec says "Catalog.API" or "eShop - Catalog HTTP API".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

import yaml

from orchscan.collectors.openapi.model import Spec, SpecProblem

#: Reasons a spec was bound to a service, strongest first.
REASONS = ("mapping", "x-service-name", "server-host", "title", "file-name")

_FILLER = frozenset(
    (
        "api",
        "apis",
        "service",
        "services",
        "svc",
        "http",
        "https",
        "rest",
        "openapi",
        "swagger",
        "spec",
        "v1",
        "v2",
        "v3",
    )
)
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, order=True, slots=True)
class Binding:
    """One spec describing one service, and the evidence (one of ``REASONS``) that tied them."""

    service: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class SpecBindings:
    """The outcome of binding specs to services, including what stayed unbound on either side."""

    bindings: tuple[Binding, ...]
    unmatched_specs: tuple[str, ...]
    unmatched_services: tuple[str, ...]

    def specs_for(self, service: str, specs: Iterable[Spec]) -> tuple[Spec, ...]:
        """The specs bound to ``service``, in the order given."""
        sources = {b.source for b in self.bindings if b.service == service}
        return tuple(spec for spec in specs if spec.source in sources)


def normalise_name(name: str) -> str:
    """Reduce a service name, title or file stem to its distinctive words, for comparison."""
    words = _TOKEN.findall(name.lower())
    return "".join(w for w in words if w not in _FILLER and not w.isdigit())


def load_mapping(path: str | os.PathLike[str]) -> tuple[dict[str, str], tuple[SpecProblem, ...]]:
    """Read a ``service: spec-file`` YAML mapping; spec files are taken relative to the mapping's folder."""
    file = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return {}, (
            SpecProblem(file, "", f"cannot read the service mapping: {' '.join(str(error).split())}"),
        )
    if not isinstance(document, dict):
        return {}, (SpecProblem(file, "", "the service mapping must be a mapping of service: spec-file"),)
    folder = Path(path).parent
    mapping: dict[str, str] = {}
    problems = []
    for service, spec_file in document.items():
        if not isinstance(service, str) or not isinstance(spec_file, str):
            problems.append(
                SpecProblem(file, f"/{service}", "expected a service name mapped to a spec file name")
            )
            continue
        mapping[service] = os.path.normpath(folder / spec_file)
    return mapping, tuple(problems)


def _same_file(source: str, wanted: str) -> bool:
    if os.path.normpath(os.path.abspath(source)) == os.path.normpath(os.path.abspath(wanted)):
        return True
    return PurePath(source).name == PurePath(wanted).name


def _evidence(spec: Spec) -> list[tuple[str, set[str]]]:
    """Normalised candidate names per reason, strongest first (mapping is handled separately)."""
    hosts = {s.host for s in spec.servers if s.host} | {
        s.host for op in spec.operations for s in op.servers if s.host
    }
    host_names = {normalise_name(h) for h in hosts} | {normalise_name(h.split(".")[0]) for h in hosts}
    name = PurePath(spec.source).name
    return [
        ("x-service-name", {normalise_name(spec.service_name)} if spec.service_name else set()),
        ("server-host", host_names),
        ("title", {normalise_name(spec.title)}),
        ("file-name", {normalise_name(name.split(".")[0]), normalise_name(PurePath(name).stem)}),
    ]


def bind_specs(
    specs: Iterable[Spec], services: Iterable[str], *, mapping: Mapping[str, str] | None = None
) -> SpecBindings:
    """Tie each spec to the traced services it describes, by the strongest evidence available."""
    spec_list = list(specs)
    service_list = sorted(set(services))
    by_name: dict[str, list[str]] = {}
    for service in service_list:
        by_name.setdefault(normalise_name(service), []).append(service)
    bindings: list[Binding] = []
    for spec in spec_list:
        mapped = [s for s, f in (mapping or {}).items() if _same_file(spec.source, f)]
        if mapped:
            bindings += [Binding(s, spec.source, "mapping") for s in mapped]
            continue
        for reason, names in _evidence(spec):
            matched = sorted({s for name in names if name for s in by_name.get(name, [])})
            if matched:
                bindings += [Binding(s, spec.source, reason) for s in matched]
                break
    bound_specs = {b.source for b in bindings}
    bound_services = {b.service for b in bindings}
    return SpecBindings(
        tuple(sorted(bindings)),
        tuple(sorted(s.source for s in spec_list if s.source not in bound_specs)),
        tuple(s for s in service_list if s not in bound_services),
    )
