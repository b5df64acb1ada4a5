"""Backstage catalog descriptors for the landscape as traced: what the catalog would hold.

``catalog-info.yaml`` (one YAML document per entity, ``backstage.io/v1alpha1``) holds a
``Component`` per traced service, with ``dependsOn`` for every service, store or peer it calls
(messages are not dependencies: a producer does not wait for its consumers), ``providesApis``
for its specs and its drafted workflows and ``consumesApis`` for the specs of the services it
calls; an ``API`` of type ``openapi`` per loaded spec and an ``API`` of type ``arazzo`` per
drafted workflow document, provided by its orchestrator. API definitions are ``$text``
references to the copies beside the drafts, so the catalog moves with the output folder.

Entity names follow Backstage's rule (``[A-Za-z0-9]`` separated by ``-_.``, at most 63
characters; unique per kind, case-insensitively): a name that does not fit is rewritten with a
hash suffix, and the traced name is kept in the ``orchscan/service-name`` annotation. A service's
owner is its team (from the owners file, ``service.namespace`` or the Kubernetes namespace, named
by Backstage's rule as a ``Group`` reference), an API's the team of the services it belongs to
when they agree; where nothing tells, and for lifecycles, the value is ``unknown`` (drafted
workflows ``experimental``), for the catalog's maintainers to fill in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from orchscan.analyzer.requests.calls import MESSAGING
from orchscan.analyzer.results import Analysis, ServiceRole
from orchscan.reports.arazzo.draft_set import DraftSet
from orchscan.reports.arazzo.spec_copies import SpecCopy
from orchscan.reports.names import NameRules, unique_labels, unique_names
from orchscan.reports.yaml_text import render_yaml_documents

#: The catalog file, at the top of the output folder (its ``$text`` references are relative).
CATALOG_FILE = "catalog-info.yaml"

#: The descriptor format version written.
API_VERSION = "backstage.io/v1alpha1"

#: Owner and lifecycle of what traces cannot tell.
UNKNOWN = "unknown"

#: Lifecycle of a drafted workflow: a draft, not yet reviewed.
DRAFT_LIFECYCLE = "experimental"

#: Backstage's entity name rule (KubernetesValidatorFunctions.isValidObjectName); entity
#: references compare names case-insensitively.
ENTITY_NAMES = NameRules(re.compile(r"[^A-Za-z0-9._-]+"), "._-", 63, fold_case=True)

_ANNOTATION = "orchscan/"


def catalog_files(analysis: Analysis, drafts: DraftSet) -> dict[str, str | bytes]:
    """The catalog file and every file its definitions refer to (drafts, stand-ins, spec copies)."""
    files: dict[str, str | bytes] = {CATALOG_FILE: render_catalog(analysis, drafts)}
    files |= drafts.files()
    for copy in drafts.specs:
        files |= {path.as_posix(): data for path, data in copy.files.items()}
    return {path: files[path] for path in sorted(files)}


def render_catalog(analysis: Analysis, drafts: DraftSet) -> str:
    """The catalog descriptors of the scanned landscape, components first, each kind by name."""
    components = unique_names((s.name for s in analysis.services), ENTITY_NAMES)
    team_of = analysis.team_of()
    groups = unique_names(sorted(set(team_of.values())), ENTITY_NAMES)

    def owner(*services: str) -> str:
        """The services' team as a Group name when they all have the same one, else unknown."""
        teams = {team_of.get(service) for service in services}
        (team,) = teams if len(teams) == 1 else (None,)
        return groups[team] if team is not None else UNKNOWN

    labels = {_spec_key(copy): PurePosixPath(copy.spec.source).stem for copy in drafts.specs}
    labels |= {_draft_key(draft.owner): f"{draft.owner}-workflows" for draft in drafts.drafts}
    apis = unique_labels(labels, ENTITY_NAMES)
    provided: dict[str, list[str]] = {}
    specs_of: dict[str, list[str]] = {}
    entities = []
    for copy in drafts.specs:
        name = apis[_spec_key(copy)]
        for service in copy.services:
            provided.setdefault(service, []).append(name)
            specs_of.setdefault(service, []).append(name)
        entities.append(
            _api(
                name,
                "openapi",
                copy.path,
                title=copy.spec.title,
                description=f"OpenAPI description read from {PurePosixPath(copy.spec.source).name}",
                lifecycle=UNKNOWN,
                owner=owner(*copy.services) if copy.services else UNKNOWN,
                annotations={"spec-source": copy.spec.source},
            )
        )
    for draft in drafts.drafts:
        name = apis[_draft_key(draft.owner)]
        provided.setdefault(draft.owner, []).append(name)
        entities.append(
            _api(
                name,
                "arazzo",
                draft.path,
                title=f"{draft.owner}: orchestrated workflows (draft)",
                description=f"Workflows {draft.owner} coordinates, drafted by orchscan from traces",
                lifecycle=DRAFT_LIFECYCLE,
                owner=owner(draft.owner),
                annotations={"service-name": draft.owner},
            )
        )
    depends: dict[str, set[str]] = {}
    for edge in analysis.edges:
        if edge.kind != MESSAGING and edge.callee != edge.caller:
            depends.setdefault(edge.caller, set()).add(edge.callee)
    described = [
        _component(
            service,
            components[service.name],
            depends_on=sorted(f"component:{components[c]}" for c in depends.get(service.name, ())),
            provides=sorted(provided.get(service.name, ())),
            consumes=sorted({api for c in depends.get(service.name, ()) for api in specs_of.get(c, ())}),
            owner=owner(service.name),
        )
        for service in analysis.services
    ]
    by_name = sorted(described, key=lambda e: str(e["metadata"]["name"]).casefold()) + sorted(
        entities, key=lambda e: str(e["metadata"]["name"]).casefold()
    )
    return render_yaml_documents(by_name)


def _spec_key(copy: SpecCopy) -> str:
    return f"openapi {copy.spec.source}"


def _draft_key(owner: str) -> str:
    return f"arazzo {owner}"


def _component(
    service: ServiceRole,
    name: str,
    *,
    depends_on: list[str],
    provides: list[str],
    consumes: list[str],
    owner: str,
) -> dict[str, Any]:
    kind, hidden = service.role, service.hidden
    tags = ["orchscan", kind] + (["hidden-orchestrator"] if hidden else [])
    spec: dict[str, Any] = {"type": "service", "lifecycle": UNKNOWN, "owner": owner}
    if provides:
        spec["providesApis"] = provides
    if consumes:
        spec["consumesApis"] = consumes
    if depends_on:
        spec["dependsOn"] = depends_on
    description = f"Traced service, role {'hidden ' if hidden else ''}{kind} (found by orchscan)"
    return {
        "apiVersion": API_VERSION,
        "kind": "Component",
        "metadata": _metadata(
            name, service.name, description, {"service-name": service.name, "role": kind}, tags
        ),
        "spec": spec,
    }


def _api(
    name: str,
    kind: str,
    path: PurePosixPath,
    *,
    title: str,
    description: str,
    lifecycle: str,
    owner: str,
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "API",
        "metadata": _metadata(name, title, description, annotations, ["orchscan", kind]),
        "spec": {
            "type": kind,
            "lifecycle": lifecycle,
            "owner": owner,
            # Resolved by Backstage relative to this catalog file.
            "definition": {"$text": f"./{path.as_posix()}"},
        },
    }


def _metadata(
    name: str, title: str, description: str, annotations: Mapping[str, str], tags: list[str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if title != name:
        metadata["title"] = title
    metadata["description"] = description
    metadata["annotations"] = {f"{_ANNOTATION}{key}": annotations[key] for key in sorted(annotations)}
    metadata["tags"] = tags
    return metadata
