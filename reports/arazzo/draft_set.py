"""Every Arazzo draft of one scan, with every file the drafts reference, laid out in one folder.

Drafts are written for orchestrators only, and only for the flows the analysis claims (enough
evidence: ``flows.evidence_min_requests`` requests and ``flows.evidence_min_steps`` steps, no
mixed entry; the others are observed flows): a draft is a claim that a workflow exists.
Everything lives below ``arazzo/`` in the output folder and every source description is a
relative URL inside it, so the folder can be moved, zipped or committed on its own: the bound
specs are copied into ``arazzo/openapi/``, and a service without a spec gets one inferred
stand-in shared by every draft that calls it. File names are unique on case-insensitive file
systems and bounded in length (``reports/names.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

from orchscan.analyzer.pipeline import ScanResult
from orchscan.analyzer.results import Analysis, Flow
from orchscan.collectors.openapi.model import SpecSet
from orchscan.reports.arazzo.drafts import ServiceApi, build_arazzo, plan_apis
from orchscan.reports.arazzo.inferred_openapi import build_inferred_openapi
from orchscan.reports.arazzo.spec_copies import SpecCopy, copy_specs
from orchscan.reports.names import FILE_NAMES, unique_names
from orchscan.reports.yaml_text import render_yaml

#: The drafts' folder inside the output folder.
ARAZZO_DIR = PurePosixPath("arazzo")

#: Where the bound specs are copied, inside the drafts' folder.
SPEC_COPIES_DIR = ARAZZO_DIR / "openapi"

#: File name ending of a draft.
ARAZZO_SUFFIX = ".arazzo.yaml"


class _Drafting:
    """Builds every draft's document, and the stand-ins they need, the first time one is asked
    for: findings.json only names the drafts' files, and building a landscape's drafts took a
    second of a 1M-span scan that writes nothing else."""

    def __init__(
        self,
        flows: Sequence[Flow],
        paths: Mapping[str, PurePosixPath],
        documented: Mapping[str, ServiceApi],
        copies: Sequence[SpecCopy],
        statuses: Mapping[tuple[str, str], tuple[int, ...]],
    ) -> None:
        self._flows = flows
        self._paths = paths
        self._documented = documented
        self._copies = copies
        self._statuses = statuses

    def document(self, owner: str) -> Mapping[str, Any]:
        return self._built[0][owner]

    def needs(self, owner: str) -> tuple[PurePosixPath, ...]:
        return self._built[1][owner]

    @property
    def supporting(self) -> Mapping[PurePosixPath, str | bytes]:
        return self._built[2]

    @cached_property
    def _built(
        self,
    ) -> tuple[
        dict[str, Mapping[str, Any]],
        dict[str, tuple[PurePosixPath, ...]],
        Mapping[PurePosixPath, str | bytes],
    ]:
        apis = plan_apis(self._flows, self._documented, folder=ARAZZO_DIR, success_statuses=self._statuses)
        copied: dict[PurePosixPath, str | bytes] = {}
        for copy in self._copies:
            copied.update(copy.files)
        inferred = {
            PurePosixPath(api.path): build_inferred_openapi(api.service, api.operations)
            for api in apis.values()
            if api.spec is None
        }
        copy_files = {copy.path: tuple(copy.files) for copy in self._copies}
        documents: dict[str, Mapping[str, Any]] = {}
        needs: dict[str, tuple[PurePosixPath, ...]] = {}
        for owner, path in sorted(self._paths.items()):
            owned = [flow for flow in self._flows if flow.owner == owner]
            document = build_arazzo(owned, apis, arazzo_path=path, success_statuses=self._statuses)
            sources = [ARAZZO_DIR / unquote(source["url"]) for source in document["sourceDescriptions"]]
            documents[owner] = document
            needs[owner] = tuple(
                sorted({file for source in sources for file in copy_files.get(source, (source,))})
            )
        return documents, needs, RenderedOnDemand(copied, inferred)


@dataclass(frozen=True)
class Draft:
    """One orchestrator's workflow document.

    ``path`` is relative to the output folder; ``flows`` are the ids of the flows it drafts;
    ``needs`` the files its source descriptions point at (all files of a copied spec). The
    document is built when first asked for (see :class:`_Drafting`).
    """

    owner: str
    path: PurePosixPath
    flows: tuple[str, ...]
    _drafting: _Drafting = field(repr=False, compare=False)

    @property
    def document(self) -> Mapping[str, Any]:
        return self._drafting.document(self.owner)

    @property
    def needs(self) -> tuple[PurePosixPath, ...]:
        return self._drafting.needs(self.owner)

    @cached_property
    def text(self) -> str:
        """The document's YAML, rendered when a report first asks for it: findings.json only
        names the file, and rendering a landscape's drafts costs seconds."""
        return render_yaml(self.document)


class RenderedOnDemand(Mapping[PurePosixPath, str | bytes]):
    """Files by path whose YAML documents are rendered the first time one is read, then kept."""

    def __init__(
        self, files: Mapping[PurePosixPath, str | bytes], documents: Mapping[PurePosixPath, Any]
    ) -> None:
        self._texts: dict[PurePosixPath, str | bytes] = dict(files)
        self._documents = {path: doc for path, doc in documents.items() if path not in self._texts}

    def __getitem__(self, path: PurePosixPath) -> str | bytes:
        if path not in self._texts:
            self._texts[path] = render_yaml(self._documents[path])
        return self._texts[path]

    def __iter__(self) -> Iterator[PurePosixPath]:
        yield from self._texts
        yield from (path for path in self._documents if path not in self._texts)

    def __len__(self) -> int:
        return len(self._texts.keys() | self._documents.keys())


@dataclass(frozen=True)
class DraftSet:
    """The drafts of one scan and the files beside them, by path relative to the output folder.

    ``drafts`` are sorted by owner; ``supporting`` holds the inferred stand-ins and the copied
    specs any draft needs; ``specs`` is every loaded spec's copy, needed by a draft or not.
    """

    drafts: tuple[Draft, ...]
    specs: tuple[SpecCopy, ...]
    _drafting: _Drafting = field(repr=False, compare=False)

    @property
    def supporting(self) -> Mapping[PurePosixPath, str | bytes]:
        return self._drafting.supporting

    def files(self) -> dict[str, str | bytes]:
        """Every draft and every file a draft needs, keyed by POSIX path, sorted."""
        found: dict[PurePosixPath, str | bytes] = {draft.path: draft.text for draft in self.drafts}
        for draft in self.drafts:
            found.update({path: self.supporting[path] for path in draft.needs})
        return {path.as_posix(): found[path] for path in sorted(found)}

    def file_of_flow(self) -> dict[str, str]:
        """Flow id -> path of the draft that holds it; flows without a draft are left out."""
        return {flow: draft.path.as_posix() for draft in self.drafts for flow in draft.flows}

    def text_of_flow(self) -> dict[str, str]:
        """Flow id -> YAML text of the draft that holds it."""
        return {flow: draft.text for draft in self.drafts for flow in draft.flows}

    def text_of_owner(self) -> dict[str, str]:
        """Owner -> YAML text of its draft."""
        return {draft.owner: draft.text for draft in self.drafts}


def select_flows(analysis: Analysis) -> tuple[Flow, ...]:
    """The flows a draft may be built on: claimed orchestrated flows owned by an orchestrator.

    An event-driven flow has no one caller whose workflow Arazzo could describe.
    """
    roles = {service.name: service.role for service in analysis.services}
    return tuple(
        flow
        for flow in analysis.flows
        if flow.kind == "orchestrated" and roles.get(flow.owner) == "orchestrator"
    )


def draft_workflows(result: ScanResult, specs: SpecSet | None) -> DraftSet:
    """The scan's drafts, stand-ins and spec copies, ready to write."""
    copies = copy_specs(specs, result.bindings, folder=SPEC_COPIES_DIR)
    documented = {
        service: ServiceApi(service, copy.path, copy.spec) for copy in copies for service in copy.services
    }
    flows = select_flows(result.analysis)
    by_owner: dict[str, list[Flow]] = {}
    for flow in flows:
        by_owner.setdefault(flow.owner, []).append(flow)
    names = unique_names(by_owner, FILE_NAMES)
    paths = {owner: ARAZZO_DIR / f"{names[owner]}{ARAZZO_SUFFIX}" for owner in by_owner}
    drafting = _Drafting(flows, paths, documented, copies, result.success_statuses)
    drafts = tuple(
        Draft(owner, paths[owner], tuple(sorted(f.id for f in owned)), drafting)
        for owner, owned in sorted(by_owner.items())
    )
    return DraftSet(drafts, copies, drafting)
