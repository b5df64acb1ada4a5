"""The whole result of one scan: what was read, and what was found in it."""

from __future__ import annotations

from dataclasses import dataclass

from orchscan.analyzer.model import Edge, Finding, Flow, ServiceRole
from orchscan.analyzer.specs.operations import ServiceCoverage


@dataclass(frozen=True)
class SkippedInput:
    """Input records that could not be used, folded by file, position and reason."""

    file: str
    position: str
    reason: str
    count: int


@dataclass(frozen=True)
class InputFile:
    """One input file: its detected format and what it contributed."""

    file: str
    format: str
    spans: int
    traces: int


@dataclass(frozen=True)
class InputSummary:
    """What the scan read. Paths are as given on the command line (relative stays relative).

    ``start_ns``/``end_ns`` bound the observed time window; ``openapi_match_rate`` is the share
    of server spans tied to a documented operation (None without specs).
    """

    files: tuple[InputFile, ...]
    spans: int
    traces: int
    services: int
    start_ns: int | None
    end_ns: int | None
    skipped: tuple[SkippedInput, ...]
    notices: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()
    openapi_match_rate: float | None = None


@dataclass(frozen=True)
class Analysis:
    """Everything a report renders.

    ``services`` are sorted by ``(-score, name)``; ``edges`` by ``(caller, callee, kind)``;
    ``flows`` by ``(owner, entry key)``; ``findings`` by :meth:`Finding.sort_key`;
    ``coverage`` (one record per service with a spec) by service name.
    """

    input: InputSummary
    services: tuple[ServiceRole, ...]
    edges: tuple[Edge, ...]
    flows: tuple[Flow, ...] = ()
    findings: tuple[Finding, ...] = ()
    coverage: tuple[ServiceCoverage, ...] = ()

    def service(self, name: str) -> ServiceRole | None:
        """The role record of a service, if it was seen."""
        return next((s for s in self.services if s.name == name), None)
