"""Operations as route templates: concrete paths with their ids folded, for the services table.

A service without a route attribute or a spec reports its operations by concrete path
(``GET /prices/p-022``), one per id it served. Segments the analyzer's matcher folds (numbers,
UUIDs, long hex) are folded with its own function. Ids it cannot recognise by their shape
(``p-022``, ``sku-17``) are told by their siblings: where one service has two or more paths
that differ only in one segment, and those segments carry digits, the segment is an id.

The fold belongs in the analysis results (``ServiceRole.operations``); until it is there, the
report folds what it shows and says how many concrete operations each template stands for.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import pyarrow as pa

# The matcher's fold, reused so that the report and the spec matching agree on what an id is.
from orchscan.analyzer.specs.operations import _fold_identifiers

#: The marker a folded segment shows, as the analyzer writes it.
FOLDED = "{}"

_HTTP_KEY = re.compile(r"^([A-Z]+) (/\S*)$")
_DIGIT = re.compile(r"\d")


def fold_operations(keys: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """Each distinct operation template and how many observed keys it stands for, most first."""
    http = [(m.group(1), m.group(2)) for m in map(_HTTP_KEY.match, keys) if m]
    other = [k for k in keys if not _HTTP_KEY.match(k)]
    paths = _fold_identifiers(pa.array([path for _, path in http], pa.string())).to_pylist() if http else []
    segments = [[method, *str(path).split("/")] for (method, _), path in zip(http, paths, strict=True)]
    _fold_siblings(segments)
    counts = Counter(f"{s[0]} {'/'.join(s[1:])}" for s in segments) + Counter(other)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _fold_siblings(keys: list[list[str]]) -> None:
    """Fold, in place, segments with digits that vary where everything else about the key agrees."""
    changed = True
    while changed:
        changed = False
        for position in range(2, max((len(k) for k in keys), default=0)):
            varying = [k for k in keys if position < len(k) and _DIGIT.search(k[position])]
            siblings: dict[tuple[str, ...], set[str]] = defaultdict(set)
            for key in varying:
                siblings[(*key[:position], *key[position + 1 :])].add(key[position])
            for key in varying:
                if len(siblings[(*key[:position], *key[position + 1 :])]) > 1:
                    key[position] = FOLDED
                    changed = True
