"""Who owns which service, and where flows cross from one team to another.

A service's team is read, strongest evidence first, from

1. the owners file (``--owners``): an exact service name beats a glob, a glob with more literal
   characters beats a looser one (``payment-*`` beats ``*``), and a tie goes to the team listed
   first in the file; the evidence names the pattern and any other team that matched;
2. the ``service.namespace`` resource attribute, which OpenTelemetry meant for exactly this
   grouping;
3. the Kubernetes namespace (``k8s.namespace.name``), which teams commonly own one each.

A service that reports several namespaces gets the one most of its spans carry (ties by name).
Spans are counted per partition (:class:`NamespacePartial`), so the landscape's choice does not
depend on how spans were partitioned. A service none of them names has no team: it is shown as
such and never counts as a boundary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
import pyarrow as pa

from orchscan.analyzer.columnar.codes import encode
from orchscan.analyzer.results import Flow, ServiceTeam
from orchscan.collectors.owners import OwnersFile

#: Span table column -> the attribute it holds, in the order of precedence.
NAMESPACE_COLUMNS = {"service_namespace": "service.namespace", "k8s_namespace": "k8s.namespace.name"}

_WILDCARDS = frozenset("*?[]!")


@dataclass(frozen=True)
class NamespacePartial:
    """Spans per (service, attribute, namespace) in one partition; partials merge by summing."""

    counts: pd.DataFrame

    @classmethod
    def of(cls, table: pa.Table) -> NamespacePartial:
        """Count the namespaces each service's spans carry (text columns plain or coded)."""
        service = encode(table["service"])
        frames = []
        for column, attribute in NAMESPACE_COLUMNS.items():
            namespace = encode(table[column])
            width = len(namespace.values)
            # The last code of each is null: a span without a service or a namespace tells nothing.
            known = (service.codes < len(service.values) - 1) & (namespace.codes < width - 1)
            pairs, spans = np.unique(
                service.codes[known] * width + namespace.codes[known], return_counts=True
            )
            frames.append(
                pd.DataFrame(
                    {
                        "service": pd.Series(
                            np.asarray(service.values, dtype=object)[pairs // width], dtype=object
                        ),
                        "attribute": attribute,
                        "namespace": pd.Series(
                            np.asarray(namespace.values, dtype=object)[pairs % width], dtype=object
                        ),
                        "spans": spans.astype("int64"),
                    }
                )
            )
        return cls(pd.concat(frames, ignore_index=True))

    @classmethod
    def merge(cls, parts: Sequence[NamespacePartial]) -> NamespacePartial:
        """The partial of the union of the partitions ``parts`` came from."""
        joined = pd.concat([part.counts for part in parts], ignore_index=True)
        summed = joined.groupby(["service", "attribute", "namespace"], sort=True, as_index=False)[
            "spans"
        ].sum()
        return cls(summed)


def assign_teams(
    services: Iterable[str], namespaces: NamespacePartial, owners: OwnersFile | None = None
) -> tuple[ServiceTeam, ...]:
    """Each service's team with its source and evidence (services without one are left out)."""
    counts = namespaces.counts
    by_service: dict[str, pd.DataFrame] = dict(iter(counts.groupby("service", sort=True)))
    found = []
    for service in sorted(set(services)):
        record = _from_owners(service, owners) if owners is not None else None
        if record is None and service in by_service:
            record = _from_namespaces(service, by_service[service])
        if record is not None:
            found.append(record)
    return tuple(found)


def _specificity(pattern: str) -> tuple[int, int]:
    """Exact names first, then globs by how many literal characters they pin down."""
    literal = sum(ch not in _WILDCARDS for ch in pattern)
    return (0 if _WILDCARDS.isdisjoint(pattern) else 1, -literal)


def _from_owners(service: str, owners: OwnersFile) -> ServiceTeam | None:
    matches = [
        (_specificity(pattern), position, team.team, pattern)
        for position, team in enumerate(owners.teams)
        for pattern in team.patterns
        if fnmatchcase(service, pattern)
    ]
    if not matches:
        return None
    matches.sort()
    _, _, team, pattern = matches[0]
    evidence = f"{owners.source}: team {team} lists {pattern!r}"
    others = sorted({t for _, _, t, _ in matches[1:] if t != team})
    if others:
        evidence += (
            f" (also matched by {', '.join(others)}: the more specific pattern, then the first team, wins)"
        )
    return ServiceTeam(service, team, "owners-file", evidence)


def _from_namespaces(service: str, counts: pd.DataFrame) -> ServiceTeam | None:
    for attribute in NAMESPACE_COLUMNS.values():
        rows = counts[counts["attribute"] == attribute].sort_values(
            ["spans", "namespace"], ascending=[False, True], kind="stable"
        )
        if rows.empty:
            continue
        namespace, spans = str(rows["namespace"].iloc[0]), int(rows["spans"].iloc[0])
        evidence = f"{attribute} {namespace!r} on {spans:,} spans"
        if len(rows) > 1:
            others = ", ".join(
                f"{n!r} on {int(c):,}" for n, c in zip(rows["namespace"][1:], rows["spans"][1:], strict=True)
            )
            evidence += f" (also {others})"
        return ServiceTeam(service, namespace, attribute, evidence)
    return None


def with_teams(flows: Sequence[Flow], teams: Mapping[str, str]) -> tuple[Flow, ...]:
    """The flows with their teams and the team boundaries their steps cross filled in."""
    return tuple(
        dataclasses.replace(f, teams=flow_teams(f, teams), team_boundaries=team_boundaries(f, teams))
        for f in flows
    )


def flow_teams(flow: Flow, teams: Mapping[str, str]) -> tuple[str, ...]:
    """The known teams of the flow's owner and of every service taking part in a step."""
    services = (
        {flow.owner}
        | {s.operation.service for s in flow.steps}
        | {s.caller or flow.owner for s in flow.steps}
    )
    return tuple(sorted({teams[name] for name in services if name in teams}))


def team_boundaries(flow: Flow, teams: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Distinct pairs of different known teams a step goes between (caller's team, callee's), sorted."""
    pairs = set()
    for step in flow.steps:
        caller, callee = teams.get(step.caller or flow.owner), teams.get(step.operation.service)
        if caller is not None and callee is not None and caller != callee:
            pairs.add((min(caller, callee), max(caller, callee)))
    return tuple(sorted(pairs))


def coordinated_teams(
    flows: Sequence[Flow], teams: Mapping[str, str]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per owner of orchestrated flows: the other teams whose services its flows call, and which ones.

    Only owners whose team is known appear; services without a team are left out.
    """
    found: dict[str, dict[str, set[str]]] = {}
    for flow in flows:
        own = teams.get(flow.owner)
        if flow.kind != "orchestrated" or own is None:
            continue
        for step in flow.steps:
            team = teams.get(step.operation.service)
            if team is not None and team != own:
                found.setdefault(flow.owner, {}).setdefault(team, set()).add(step.operation.service)
    return {
        owner: {team: tuple(sorted(services)) for team, services in sorted(by_team.items())}
        for owner, by_team in sorted(found.items())
    }
