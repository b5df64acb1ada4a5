"""Copies of the loaded OpenAPI specs for the output folder, so drafts and catalogs travel with it.

A draft's source descriptions must still resolve after the output folder is moved, zipped or
committed elsewhere; a path back to the user's spec folder does not. Each spec is copied byte for
byte into a folder of its own (named after its file, made unique), together with the local files
its ``$ref``s reach, in the same relative layout, so that references between them still hold.
Only files inside the spec's own folder are copied, the boundary the loader enforces unless told
otherwise; remote references stay remote.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from orchscan.collectors.openapi.binding import SpecBindings
from orchscan.collectors.openapi.documents import DEFAULT_LIMITS, DocumentError, parse_document
from orchscan.collectors.openapi.model import Spec, SpecSet
from orchscan.reports.names import FILE_NAMES, unique_labels

# A ``$ref`` whose target does not start with ``#``: the only kind that can name another file.
# Parsing a large spec again only to learn that it has none would double its loading time.
_EXTERNAL_REF = re.compile(rb"""\$ref['"]?+\s*+:\s*+(?!['"]?#)""")


@dataclass(frozen=True)
class SpecCopy:
    """One loaded spec as copied into the output.

    ``path`` is the copied spec document, ``files`` every copied file (the document included)
    with its bytes; both relative to the output folder. ``services`` are the traced services the
    spec was bound to, sorted.
    """

    spec: Spec
    services: tuple[str, ...]
    path: PurePosixPath
    files: Mapping[PurePosixPath, bytes]


def copy_specs(
    specs: SpecSet | None, bindings: SpecBindings | None, *, folder: PurePosixPath
) -> tuple[SpecCopy, ...]:
    """A copy of every readable spec below ``folder``, sorted by spec source."""
    if specs is None:
        return ()
    services: dict[str, list[str]] = {}
    for binding in bindings.bindings if bindings is not None else ():
        services.setdefault(binding.source, []).append(binding.service)
    by_source = {spec.source: spec for spec in specs.specs}
    names = unique_labels({source: Path(source).stem for source in by_source}, FILE_NAMES)
    copies = []
    for source in sorted(by_source):
        files = _spec_files(Path(source))
        if not files:
            continue  # gone since it was loaded; drafts fall back to an inferred stand-in
        target = folder / names[source]
        copies.append(
            SpecCopy(
                spec=by_source[source],
                services=tuple(sorted(services.get(source, ()))),
                path=target / Path(source).resolve().name,
                files={target / relative: data for relative, data in sorted(files.items())},
            )
        )
    return tuple(copies)


def _spec_files(document: Path) -> dict[PurePosixPath, bytes]:
    """The spec document and every local file its references reach, relative to its folder."""
    main = document.resolve()
    root = main.parent
    found: dict[PurePosixPath, bytes] = {}
    pending = [main]
    while pending:
        path = pending.pop()
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if relative in found:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # the loader reported it when the spec was read
        found[relative] = data
        for target in _referenced_files(data, path.parent):
            if target.is_relative_to(root):
                pending.append(target)
    return found


def _referenced_files(data: bytes, here: Path) -> Iterator[Path]:
    """Local files named by the ``$ref``s of one document, resolved against its folder."""
    if _EXTERNAL_REF.search(data) is None:
        return
    try:
        tree = parse_document(data, DEFAULT_LIMITS)
    except DocumentError:
        return
    for ref in sorted(set(_refs(tree))):
        address = ref.partition("#")[0]
        parts = urlsplit(address)
        if not address or parts.scheme in ("http", "https"):
            continue
        if parts.scheme == "file":
            address = parts.path
        elif len(parts.scheme) > 1:  # one letter is a Windows drive
            continue
        yield (here / unquote(address)).resolve()


def _refs(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                yield ref
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
