"""Data handoffs: which output of an earlier step feeds which input of a later step.

Two kinds of evidence, combined per (from step, to step, parameter):

* the API descriptions: a response property of step *i* whose normalised name is a request
  parameter or body property of step *j* (``id`` of ``POST /reservations`` ↔ ``reservationId``,
  ``reservation_id``, or ``{id}`` in ``/reservations/{id}``); the entry operation's own inputs are
  step 0;
* the traces: a concrete id in a later step's URL path that an earlier step created (the later
  path is the earlier ``POST`` path plus that id) or that the entry request's path carried.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.analyzer.flows.steps import StepCalls, singular
from orchscan.analyzer.results import Flow, Handoff
from orchscan.analyzer.specs.operations import operation_of

if TYPE_CHECKING:
    from orchscan.collectors.openapi.model import Operation

#: Documented operations per service name.
SpecIndex = Mapping[str, Sequence["Operation"]]

_ID_VALUE = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?=.*\d)[\w.~:-]{6,})$",
    re.IGNORECASE,
)
# Names too generic to link on their own, without the resource they belong to.
_GENERIC = frozenset(("id", "name", "type", "status", "value", "code", "description", "data", "items"))


@dataclass(frozen=True)
class _Slot:
    """One named input or output of a step, with its normalised name."""

    step: int
    name: str
    key: str
    location: str
    type: str | None


def normalise(name: str) -> str:
    """Compare names the way developers vary them: ``reservation_id`` = ``reservationId``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resource_of(path: str) -> str | None:
    """The resource a path template is about: its last literal segment, singular."""
    literal = [s for s in path.strip("/").split("/") if s and not s.startswith("{")]
    if not literal:
        return None
    return singular(literal[-1])


def find_handoffs(steps: StepCalls, flow: Flow, *, specs: SpecIndex | None = None) -> tuple[Handoff, ...]:
    """Every handoff of the flow with its confidence and evidence, sorted by (to, from, parameter)."""
    found: dict[tuple[int, int, str], Handoff] = {}
    if specs:
        for handoff in _schema_handoffs(flow, specs):
            found[(handoff.from_step, handoff.to_step, normalise(handoff.parameter))] = handoff
    for handoff in _trace_handoffs(steps, flow):
        key = (handoff.from_step, handoff.to_step, normalise(handoff.parameter))
        known = found.get(key)
        if known is None:
            found[key] = handoff
        else:
            found[key] = Handoff(
                from_step=known.from_step,
                output=known.output,
                to_step=known.to_step,
                parameter=known.parameter,
                location=known.location,
                confidence=min(1.0, max(known.confidence, handoff.confidence) + 0.2),
                evidence=known.evidence + handoff.evidence,
            )
    return tuple(sorted(found.values(), key=lambda h: (h.to_step, h.from_step, h.parameter)))


def _outputs(step: int, op: Operation) -> Iterator[_Slot]:
    resource = resource_of(op.path)
    for response in op.responses:
        if not response.status.startswith("2"):
            continue
        for field in response.fields:
            # Only top-level properties (and those of a wrapping item) identify a result.
            if field.pointer.count("/") > 2:
                continue
            name = field.name
            yield from _named(step, name, field.pointer, "body", field.type, resource)


def _inputs(step: int, op: Operation) -> Iterator[_Slot]:
    resource = resource_of(op.path)
    for parameter in op.parameters:
        own = resource if parameter.location == "path" else None
        yield from _named(step, parameter.name, parameter.name, parameter.location, parameter.type, own)
    for field in op.request_fields:
        if field.pointer.count("/") == 1:
            yield from _named(step, field.name, field.pointer, "body", field.type, None)


def _named(
    step: int, name: str, label: str, location: str, kind: str | None, resource: str | None
) -> Iterator[_Slot]:
    key = normalise(name)
    if key == "id" and resource:
        yield _Slot(step, label, normalise(resource + "id"), location, kind)
    elif key not in _GENERIC:
        yield _Slot(step, label, key, location, kind)


def _schema_handoffs(flow: Flow, specs: SpecIndex) -> Iterator[Handoff]:
    documented: dict[int, Operation] = {}
    entry = operation_of(flow.entry, specs.get(flow.entry.service, ()))
    if entry is not None:
        documented[0] = entry
    for step in flow.steps:
        op = operation_of(step.operation, specs.get(step.operation.service, ()))
        if op is not None:
            documented[step.index] = op
    # Outputs available before each step: the entry's inputs, then every earlier step's results.
    available: list[_Slot] = list(_inputs(0, documented[0])) if 0 in documented else []
    for index in sorted(i for i in documented if i > 0):
        op = documented[index]
        for wanted in _inputs(index, op):
            sources = [s for s in available if s.key == wanted.key]
            if not sources:
                continue
            # The nearest earlier producer wins: a later result supersedes an earlier one.
            source = max(sources, key=lambda s: (s.step, s.type == wanted.type))
            typed = source.type is not None and source.type == wanted.type
            producer = documented[source.step]
            yield Handoff(
                from_step=source.step,
                output=source.name,
                to_step=index,
                parameter=wanted.name,
                location=wanted.location,
                confidence=0.6 if typed else 0.5,
                evidence=(
                    f"{producer.method.upper()} {producer.path} "
                    f"{'request' if source.step == 0 else 'response'} field {source.name!r}"
                    f"{' (' + source.type + ')' if source.type else ''} matches {wanted.location} "
                    f"{wanted.name!r} of {op.method.upper()} {op.path}",
                ),
            )
        available.extend(_outputs(index, op))


def _segments(frame: pd.DataFrame) -> pd.DataFrame:
    """Each id-like segment of each concrete path, with what precedes it and its template name.

    Paths are split by Arrow; the id pattern is tried once per distinct segment, and names and
    prefixes are spelled only for the id segments found.
    """
    paths = pa.array(frame["url_path"].fillna("").to_numpy(dtype=object), pa.string())
    split = pc.split_pattern(pc.utf8_trim(paths, "/"), "/")
    owner = pc.list_parent_indices(split).to_numpy()
    position = np.arange(len(owner)) - split.offsets.to_numpy()[owner]
    encoded = pc.dictionary_encode(pc.list_flatten(split))
    distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    is_id = np.array([_ID_VALUE.match(text) is not None for text in distinct], dtype=bool)
    codes = encoded.indices.to_numpy()
    keep = np.flatnonzero(is_id[codes]) if len(distinct) else np.zeros(0, dtype=np.int64)
    rows = frame.iloc[owner[keep]]
    positions = position[keep].tolist()
    routes = rows["route"].fillna("").str.strip("/").str.split("/").tolist()
    parts = rows["url_path"].fillna("").str.strip("/").str.split("/").tolist()
    named = [
        t[p][1:-1] if p < len(t) and t[p].startswith("{") else f"path segment {p + 1}"
        for t, p in zip(routes, positions, strict=True)
    ]
    prefix = ["/" + "/".join(parts_[:p]) for parts_, p in zip(parts, positions, strict=True)]
    return rows.assign(segment=distinct[codes[keep]], parameter=named, prefix=prefix)


def _trace_handoffs(steps: StepCalls, flow: Flow) -> Iterator[Handoff]:
    index = {f"{s.operation.service} {s.operation.key}": s.index for s in flow.steps}
    mine = steps.of(flow.id)
    calls = mine.calls[mine.calls["url_path"].notna()]
    calls = calls.assign(step_index=calls["step"].map(index)).dropna(subset=["step_index"])
    if calls.empty:
        return
    later = _segments(calls)
    if later.empty:
        return
    requests = mine.requests
    entry = _segments(requests.assign(route=None).dropna(subset=["url_path"]))
    from_entry = later.merge(entry[["entry_row", "segment"]].drop_duplicates(), on=["entry_row", "segment"])
    from_entry = from_entry.assign(from_step=0, output="path")
    created = calls[calls["method"].fillna("").str.upper().eq("POST") & ~calls["error"]]
    created = created.assign(prefix=created["url_path"].str.rstrip("/"))
    from_step = later.merge(
        created[["entry_row", "prefix", "step_index", "end_ns"]],
        on=["entry_row", "prefix"],
        suffixes=("", "_from"),
    )
    from_step = from_step[from_step["end_ns_from"] <= from_step["start_ns"]]
    from_step = from_step.assign(from_step=from_step["step_index_from"], output="id")
    links = pd.concat([from_entry, from_step], ignore_index=True)
    if links.empty:
        return
    totals = calls.groupby("step_index")["entry_row"].nunique()
    grouped = links.groupby(["from_step", "step_index", "parameter", "output"], sort=True)
    for (source, target, parameter, output), group in grouped:
        seen = int(group["entry_row"].nunique())
        share = seen / int(totals[target])
        example = group.iloc[0]
        origin = "the entry request's path" if source == 0 else f"the path created by step {int(source)}"
        yield Handoff(
            from_step=int(source),
            output=str(output),
            to_step=int(target),
            parameter=str(parameter),
            location="path",
            confidence=round(0.4 + 0.5 * share, 3),
            evidence=(
                f"in {seen} of {int(totals[target])} requests the id in {example['url_path']} "
                f"(trace {example['trace_id']}) first appeared in {origin}",
            ),
        )
