"""Flatten a body schema into the fields a reviewer and an Arazzo draft refer to.

Schemas nest through ``$ref``, ``allOf`` (all parts apply), ``oneOf``/``anyOf`` (any branch may
apply, so their fields are the union and never required) and arrays. Recursive schemas are cut
where they re-enter themselves, and the field count and depth are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchscan.collectors.openapi.documents import Limits
from orchscan.collectors.openapi.model import Field, SpecProblem
from orchscan.collectors.openapi.refs import Located, RefError, Resolver, escape


@dataclass
class _Collected:
    types: set[str] = field(default_factory=set)
    required: bool = False


class _Flattener:
    def __init__(self, resolver: Resolver, limits: Limits, problems: list[SpecProblem]) -> None:
        self.resolver = resolver
        self.limits = limits
        self.problems = problems
        self.fields: dict[str, _Collected] = {}
        self.truncated = False

    def resolve(self, node: Located) -> Located | None:
        try:
            return self.resolver.resolve(node)
        except RefError as error:
            self.problems.append(SpecProblem(error.file, error.pointer, error.message))
            return None

    def types_of(self, node: Located, depth: int = 0) -> set[str]:
        """The JSON types a schema admits, looking through references and combinators."""
        resolved = self.resolve(node)
        if resolved is None or not isinstance(resolved.value, dict) or depth > self.limits.max_depth:
            return set()
        schema = resolved.value
        declared = schema.get("type")
        if isinstance(declared, str):
            return {declared}
        if isinstance(declared, list):
            return {item for item in declared if isinstance(item, str)}
        found: set[str] = set()
        for keyword in ("allOf", "oneOf", "anyOf"):
            parts = schema.get(keyword)
            if isinstance(parts, list):
                for index in range(len(parts)):
                    found |= self.types_of(resolved.child(keyword).child(index), depth + 1)
        if not found:
            if isinstance(schema.get("properties"), dict):
                found.add("object")
            elif "items" in schema:
                found.add("array")
        return found

    def walk(
        self,
        node: Located,
        prefix: str,
        *,
        optional: bool,
        depth: int,
        stack: frozenset[tuple[str, str]],
        inherited_required: frozenset[str] = frozenset(),
    ) -> None:
        resolved = self.resolve(node)
        if resolved is None or not isinstance(resolved.value, dict):
            return
        here = (resolved.file, resolved.pointer)
        # Re-entering a schema we are inside is legal recursion (a tree of nodes); stop there.
        if here in stack or depth > self.limits.max_depth:
            return
        stack = stack | {here}
        schema = resolved.value
        required = set(inherited_required)
        if isinstance(schema.get("required"), list):
            required |= {name for name in schema["required"] if isinstance(name, str)}
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            for index in range(len(all_of)):
                part = self.resolve(resolved.child("allOf").child(index))
                if (
                    part is not None
                    and isinstance(part.value, dict)
                    and isinstance(part.value.get("required"), list)
                ):
                    required |= {n for n in part.value["required"] if isinstance(n, str)}
            for index in range(len(all_of)):
                self.walk(
                    resolved.child("allOf").child(index),
                    prefix,
                    optional=optional,
                    depth=depth,
                    stack=stack,
                    inherited_required=frozenset(required),
                )
        for keyword in ("oneOf", "anyOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list):
                for index in range(len(branches)):
                    self.walk(
                        resolved.child(keyword).child(index), prefix, optional=True, depth=depth, stack=stack
                    )
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name in properties:
                if not isinstance(name, str):
                    continue
                child = resolved.child("properties").child(name)
                pointer = f"{prefix}/{escape(name)}"
                self.record(pointer, self.types_of(child), not optional and name in required)
                self.walk(child, pointer, optional=False, depth=depth + 1, stack=stack)
        items = schema.get("items")
        if isinstance(items, dict):
            self.walk(resolved.child("items"), f"{prefix}/0", optional=optional, depth=depth + 1, stack=stack)

    def record(self, pointer: str, types: set[str], required: bool) -> None:
        if pointer not in self.fields and len(self.fields) >= self.limits.max_fields:
            self.truncated = True
            return
        entry = self.fields.setdefault(pointer, _Collected())
        entry.types |= types
        entry.required = entry.required or required


def flatten_schema(
    node: Located, resolver: Resolver, limits: Limits, problems: list[SpecProblem]
) -> tuple[Field, ...]:
    """The body fields a schema describes, sorted by pointer; problems met are appended."""
    flattener = _Flattener(resolver, limits, problems)
    flattener.walk(node, "", optional=False, depth=0, stack=frozenset())
    if flattener.truncated:
        problems.append(
            SpecProblem(
                node.file, node.pointer, f"schema has more than {limits.max_fields} fields; rest ignored"
            )
        )
    return tuple(
        Field(pointer, "|".join(sorted(entry.types)) or None, entry.required)
        for pointer, entry in sorted(flattener.fields.items())
    )
