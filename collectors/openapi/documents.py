"""Read one JSON or YAML document safely: bounded size, bounded alias expansion, no Python tags.

YAML aliases let a few hundred bytes describe billions of nodes ("billion laughs"): PyYAML
shares the aliased node, so parsing is cheap, but anything that later walks the tree expands it.
The loader here measures the tree as it would be walked (every alias counted at the size of
what it points to) and refuses documents beyond the node budget before anything walks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits for reading spec documents.

    ``max_bytes`` bounds each document's size, ``max_nodes`` the number of YAML nodes a full walk
    would visit (aliases expanded), ``max_ref_hops`` the length of one ``$ref`` chain, and
    ``max_fields`` / ``max_depth`` the body fields flattened per schema.
    """

    max_bytes: int = 16 * 1024 * 1024
    max_nodes: int = 2_000_000
    max_ref_hops: int = 64
    max_fields: int = 2000
    max_depth: int = 12


DEFAULT_LIMITS = Limits()


class DocumentError(Exception):
    """A document could not be read; the message says why (the caller adds file and pointer)."""


def _expanded_size(root: Node, budget: int) -> int:
    """Count the nodes a walk of ``root`` visits, following aliases as often as they occur."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in in_progress:
            raise DocumentError("YAML alias refers to its own ancestor (recursive structure)")
        in_progress.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > budget:
                    break
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > budget:
                    break
        in_progress.discard(key)
        sizes[key] = total
        return total

    return size(root)


#: libyaml's safe loader where PyYAML was built with it (about eight times faster on large
#: specs), the pure-Python one elsewhere; both construct only plain data.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _bounded_loader(max_nodes: int) -> type[yaml.SafeLoader]:
    """A safe loader that refuses documents whose expanded node count exceeds the budget."""

    class BoundedLoader(_SAFE_LOADER):  # type: ignore[valid-type,misc]
        def get_single_node(self) -> Node | None:
            node: Node | None = super().get_single_node()
            if node is not None:
                count = _expanded_size(node, max_nodes)
                if count > max_nodes:
                    raise DocumentError(f"YAML expands to more than {max_nodes} nodes (alias bomb?); refused")
            return node

    return BoundedLoader


def parse_document(data: bytes, limits: Limits) -> Any:
    """Decode a spec document from JSON or YAML bytes within the limits; raise DocumentError."""
    if len(data) > limits.max_bytes:
        raise DocumentError(f"document is {len(data)} bytes, more than the limit of {limits.max_bytes}")
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        # JSON first: real specs contain tabs, which YAML forbids as indentation.
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as error:
            json_error = error
    else:
        json_error = None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text: {error}") from None
    try:
        # A SafeLoader subclass: no Python tags, only the limits added.
        return yaml.load(text, Loader=_bounded_loader(limits.max_nodes))
    except yaml.YAMLError as error:
        if json_error is not None:
            raise DocumentError(f"malformed JSON: {json_error}") from None
        raise DocumentError(f"malformed YAML: {_one_line(error)}") from None
    except RecursionError:
        raise DocumentError("document nests too deeply") from None


def _one_line(error: yaml.YAMLError) -> str:
    """YAML errors span several lines; keep the problem and its position on one."""
    return " ".join(str(error).split())
