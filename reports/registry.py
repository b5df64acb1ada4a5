"""The artefacts a scan can write, by name. CLI choices come from here; a test runs every entry.

Each reporter turns one :class:`ReportContext` into files (relative path -> text); writing them
is the caller's job, so reporters stay pure and testable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orchscan.analyzer.pipeline import ScanResult
from orchscan.analyzer.results import Flow
from orchscan.collectors.openapi.model import SpecSet
from orchscan.reports.arazzo.drafts import DraftFile, ServiceApi, draft_arazzo
from orchscan.reports.html.render import render_html
from orchscan.reports.json_report import render_json
from orchscan.reports.markdown import render_markdown

ARAZZO_DIR = "arazzo"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ReportContext:
    """What every reporter may use: the scan result, the specs and where output goes."""

    result: ScanResult
    specs: SpecSet | None
    out_dir: Path
    generated_at: datetime | None = None
    drafts: Mapping[str, tuple[DraftFile, ...]] = field(default_factory=dict)

    def arazzo_by_flow(self) -> dict[str, str]:
        """Flow id -> path (relative to the output folder) of the Arazzo draft holding it."""
        paths = {
            owner: files[0].path.relative_to(self.out_dir).as_posix() for owner, files in self.drafts.items()
        }
        return {f.id: paths[f.owner] for f in self.result.analysis.flows if f.owner in paths}

    def arazzo_text(self) -> dict[str, str]:
        """Owner -> Arazzo YAML text, for reports that show the drafts."""
        return {owner: files[0].text for owner, files in self.drafts.items()}


def arazzo_file_name(owner: str) -> str:
    """File name of an owner's Arazzo draft; safe on every file system."""
    return f"{_UNSAFE.sub('-', owner).strip('-') or 'unnamed'}.arazzo.yaml"


def draft_workflows(
    result: ScanResult, specs: SpecSet | None, out_dir: Path
) -> dict[str, tuple[DraftFile, ...]]:
    """Arazzo drafts (plus inferred OpenAPI stand-ins) for every flow owner, keyed by owner."""
    apis: dict[str, ServiceApi] = {}
    if specs is not None and result.bindings is not None:
        for binding in result.bindings.bindings:
            spec = next(s for s in specs.specs if s.source == binding.source)
            apis.setdefault(binding.service, ServiceApi(binding.service, Path(spec.source).resolve(), spec))
    by_owner: dict[str, list[Flow]] = {}
    for flow in result.analysis.flows:
        by_owner.setdefault(flow.owner, []).append(flow)
    drafts = {}
    for owner, flows in sorted(by_owner.items()):
        path = (out_dir / ARAZZO_DIR / arazzo_file_name(owner)).resolve()
        drafts[owner] = draft_arazzo(flows, apis, arazzo_path=path, success_statuses=result.success_statuses)
    resolved = out_dir.resolve()
    return {
        owner: tuple(DraftFile(out_dir / f.path.relative_to(resolved), f.text) for f in files)
        for owner, files in drafts.items()
    }


def _arazzo(context: ReportContext) -> dict[str, str]:
    return {
        file.path.relative_to(context.out_dir).as_posix(): file.text
        for files in context.drafts.values()
        for file in files
    }


def _json(context: ReportContext) -> dict[str, str]:
    return {"findings.json": render_json(context.result.analysis, arazzo_files=context.arazzo_by_flow())}


def _html(context: ReportContext) -> dict[str, str]:
    html = render_html(
        context.result.analysis, arazzo=context.arazzo_text(), generated_at=context.generated_at
    )
    return {"report.html": html}


def _markdown(context: ReportContext) -> dict[str, str]:
    text = render_markdown(
        context.result.analysis, arazzo=context.arazzo_text(), generated_at=context.generated_at
    )
    return {"summary.md": text}


Reporter = Callable[[ReportContext], dict[str, str]]

#: Report name -> reporter. ``arazzo`` comes first: the others link to its drafts.
REPORTS: dict[str, Reporter] = {
    "arazzo": _arazzo,
    "json": _json,
    "html": _html,
    "markdown": _markdown,
}
