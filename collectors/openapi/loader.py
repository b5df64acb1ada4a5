"""Load every spec named by the user: files, several files, or folders of them.

Each top-level document gets its own resolver rooted at its folder, so ``$ref``s may reach
sibling files but not beyond (unless allowed). Files met while walking a folder that are not
OpenAPI documents and that no spec references are reported, not silently passed over.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from orchscan.collectors.openapi.documents import DEFAULT_LIMITS, DocumentError, Limits
from orchscan.collectors.openapi.model import Spec, SpecProblem, SpecSet
from orchscan.collectors.openapi.reader import read_spec
from orchscan.collectors.openapi.refs import Fetch, Resolver, fetch_url

#: File endings picked up when a folder is walked; files named explicitly are always read.
SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def load_specs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    allow_remote: bool = False,
    allow_outside: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    fetch: Fetch = fetch_url,
) -> SpecSet:
    """Read OpenAPI 3.0/3.1 and Swagger 2.0 documents; problems are returned, never raised."""
    named: list[Path] = []
    walked: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            walked += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SPEC_SUFFIXES and not p.name.startswith(".")
            )
        else:
            named.append(path)
    specs: list[Spec] = []
    problems: list[SpecProblem] = []
    referenced: set[str] = set()
    not_specs: list[Path] = []
    for path, explicit in [(p, True) for p in named] + [(p, False) for p in walked]:
        resolver = Resolver(
            path.parent, allow_remote=allow_remote, allow_outside=allow_outside, limits=limits, fetch=fetch
        )
        try:
            root = resolver.load(path, str(path))
        except DocumentError as error:
            problems.append(SpecProblem(str(path), "", str(error)))
            continue
        if not explicit and not _looks_like_spec(root.value):
            not_specs.append(path)
            continue
        spec, found = read_spec(root, resolver, limits)
        problems += found
        referenced |= resolver.referenced()
        if spec is not None:
            specs.append(spec)
    for path in not_specs:
        if str(path.resolve()) not in referenced:
            problems.append(
                SpecProblem(str(path), "", "not an OpenAPI or Swagger document (no openapi/swagger key)")
            )
    return SpecSet(tuple(specs), tuple(sorted(set(problems))))


def _looks_like_spec(document: object) -> bool:
    return isinstance(document, dict) and ("openapi" in document or "swagger" in document)
