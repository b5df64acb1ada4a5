"""The owners file (``--owners owners.yaml``): which team owns which services.

One YAML (or JSON) mapping from team name to the services it owns, each a service name or a
shell-style glob (``*``, ``?``, ``[...]``)::

    payments: [payment, "payment-*"]
    fulfilment:
      - inventory
      - shipping

A single service may stand without a list (``search: search``). The file is read with the
spec reader's safe loader (no Python tags, bounded size and alias expansion); anything that is
not this shape is an :class:`OwnersError` naming the file and the offending entry, never a
partial reading. Which pattern wins for a service several teams match is decided where the
teams are assigned (:mod:`orchscan.analyzer.landscape.ownership`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchscan.collectors.openapi.documents import DocumentError, Limits, parse_document

#: An owners file is a short list; these bounds refuse anything that could only be a mistake.
OWNERS_LIMITS = Limits(max_bytes=1024 * 1024, max_nodes=200_000)


class OwnersError(ValueError):
    """An owners file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class TeamPatterns:
    """One team and the service names or globs it owns, in file order."""

    team: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class OwnersFile:
    """The teams of an owners file, in file order; ``source`` is the path as given."""

    source: str
    teams: tuple[TeamPatterns, ...]


def load_owners(path: str | Path) -> OwnersFile:
    """Read and check an owners file; raise :class:`OwnersError` when it cannot be used."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise OwnersError(f"{source}: cannot read the owners file: {error.strerror or error}") from None
    try:
        document = parse_document(data, OWNERS_LIMITS)
    except DocumentError as error:
        raise OwnersError(f"{source}: {error}") from None
    return OwnersFile(source, _teams(source, document))


def _teams(source: str, document: object) -> tuple[TeamPatterns, ...]:
    if not isinstance(document, dict) or not document:
        raise OwnersError(
            f"{source}: expected a mapping of team names to services, e.g. 'payments: [payment, payment-*]'"
        )
    teams = []
    for team, value in document.items():
        if not isinstance(team, str) or not team.strip():
            raise OwnersError(f"{source}: team names must be non-empty text, got {team!r}")
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not patterns:
            raise OwnersError(f"{source}: team {team!r} must list its services (names or globs)")
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip():
                raise OwnersError(
                    f"{source}: team {team!r} lists {pattern!r}; services are non-empty names or globs"
                )
        teams.append(TeamPatterns(team.strip(), tuple(p.strip() for p in patterns)))
    return tuple(teams)
