"""Follow ``$ref``s inside a spec and into neighbouring files, under an explicit safety policy.

A small resolver written for orchscan rather than ``referencing``/``prance``: those resolve
eagerly or hand retrieval to a callback that can only raise, while orchscan needs every refusal
(a remote reference without ``allow_remote``, a file outside the spec's folder, a loop) as a
problem with the file and JSON pointer of the offending ``$ref``, and the rest of the spec
loaded. References are followed lazily, one node at a time; recursive schemas are legal and are
cut by the caller that walks them, reference chains that loop are refused here.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from orchscan.collectors.openapi.documents import DEFAULT_LIMITS, DocumentError, Limits, parse_document

Fetch = Callable[[str, int], bytes]


@dataclass(frozen=True, slots=True)
class Located:
    """A node of a spec document together with where it lives: display file name and JSON pointer."""

    value: Any
    file: str
    pointer: str

    def child(self, key: str | int) -> Located:
        """The node below this one at ``key`` (None when absent), with its pointer extended."""
        value = self.value
        if isinstance(value, dict):
            found = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            found = value[key]
        else:
            found = None
        return Located(found, self.file, f"{self.pointer}/{escape(str(key))}")


class RefError(Exception):
    """A ``$ref`` that cannot or may not be followed, located at the reference itself."""

    def __init__(self, file: str, pointer: str, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.pointer = pointer
        self.message = message


def escape(token: str) -> str:
    """Escape one JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def fetch_url(url: str, max_bytes: int) -> bytes:
    """Download a remote document, refusing anything larger than the limit."""
    with urllib.request.urlopen(url, timeout=10) as reply:  # only reached with allow_remote=True
        data: bytes = reply.read(max_bytes + 1)
    return data


def _is_remote(address: str) -> bool:
    return urlsplit(address).scheme in ("http", "https")


class Resolver:
    """Loads documents on demand and follows references according to the policy it was given.

    ``root`` is the folder references must stay inside unless ``allow_outside`` is set; remote
    (http/https) references are refused unless ``allow_remote`` is set.
    """

    def __init__(
        self,
        root: Path,
        *,
        allow_remote: bool = False,
        allow_outside: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        fetch: Fetch = fetch_url,
    ) -> None:
        self._root = root.resolve()
        self._allow_remote = allow_remote
        self._allow_outside = allow_outside
        self._limits = limits
        self._fetch = fetch
        self._documents: dict[str, Any] = {}
        self._names: dict[str, str] = {}

    def load(self, path: Path, display: str) -> Located:
        """Read the top-level document of a spec; raise DocumentError when it is unreadable."""
        address = str(path.resolve())
        self._names[address] = display
        return Located(self._document(address), display, "")

    def referenced(self) -> set[str]:
        """Addresses of every document read so far, the top-level one included."""
        return set(self._documents)

    def display(self, address: str) -> str:
        """The name a document is reported under: relative to the spec's folder where possible."""
        return self._names.get(address, address)

    def resolve(self, node: Located) -> Located:
        """Follow ``node``'s ``$ref`` chain to the node it finally denotes; raise RefError if refused."""
        seen: set[tuple[str, str]] = set()
        while isinstance(node.value, dict) and isinstance(node.value.get("$ref"), str):
            if len(seen) >= self._limits.max_ref_hops:
                raise RefError(node.file, node.pointer, f"$ref chain longer than {self._limits.max_ref_hops}")
            target = self._target(node, node.value["$ref"])
            if (target.file, target.pointer) in seen:
                raise RefError(node.file, node.pointer, f"$ref loop through {node.value['$ref']!r}")
            seen.add((target.file, target.pointer))
            node = target
        return node

    def _address_of(self, file: str) -> str:
        for address, name in self._names.items():
            if name == file:
                return address
        return file

    def _target(self, node: Located, ref: str) -> Located:
        here = self._address_of(node.file)
        document_part, _, fragment = ref.partition("#")
        address = self._locate(node, here, document_part) if document_part else here
        try:
            document = self._document(address)
        except DocumentError as error:
            raise RefError(node.file, node.pointer, f"$ref {ref!r}: {error}") from None
        pointer = unquote(fragment)
        if pointer and not pointer.startswith("/"):
            raise RefError(
                node.file, node.pointer, f"$ref {ref!r}: only JSON pointer fragments are supported"
            )
        value = _walk(document, pointer)
        if value is _MISSING:
            raise RefError(node.file, node.pointer, f"$ref {ref!r} points at nothing")
        return Located(value, self.display(address), pointer)

    def _locate(self, node: Located, here: str, reference: str) -> str:
        """The address of a referenced document, after the remote and folder checks."""
        if _is_remote(reference) or _is_remote(here):
            url = urljoin(here, reference) if _is_remote(here) else reference
            if not self._allow_remote:
                raise RefError(
                    node.file,
                    node.pointer,
                    f"remote $ref {url!r} refused (pass allow_remote=True to fetch it)",
                )
            self._names.setdefault(url, url)
            return url
        scheme = urlsplit(reference).scheme
        if scheme == "file":
            reference = unquote(urlsplit(reference).path)
        elif scheme and len(scheme) > 1:  # one letter is a Windows drive
            raise RefError(node.file, node.pointer, f"$ref scheme {scheme!r} is not supported")
        target = (Path(here).parent / unquote(reference)).resolve()
        if not self._allow_outside and not target.is_relative_to(self._root):
            raise RefError(
                node.file,
                node.pointer,
                f"$ref {reference!r} leaves the spec's folder (pass allow_outside=True to follow it)",
            )
        address = str(target)
        if address not in self._names:
            relative = os.path.relpath(target, self._root)
            root_display = next(iter(self._names.values()), "")
            self._names[address] = str(Path(root_display).parent / relative)
        return address

    def _document(self, address: str) -> Any:
        if address not in self._documents:
            if _is_remote(address):
                try:
                    data = self._fetch(address, self._limits.max_bytes)
                except OSError as error:
                    raise DocumentError(f"cannot fetch {address}: {error}") from None
            else:
                try:
                    data = Path(address).read_bytes()
                except OSError as error:
                    raise DocumentError(f"cannot read: {error.strerror or error}") from None
            self._documents[address] = parse_document(data, self._limits)
        return self._documents[address]


_MISSING = object()


def _walk(document: Any, pointer: str) -> Any:
    """The node at a JSON pointer, or ``_MISSING``."""
    node = document
    if not pointer:
        return node
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node
