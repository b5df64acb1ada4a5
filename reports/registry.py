"""The artefacts a scan can write, by name. CLI choices come from here; a test runs every entry.

Each reporter turns one :class:`ReportContext` into files (path relative to the output folder ->
text, or bytes for copied specs); writing them is the caller's job, so reporters stay pure and
testable. Two reporters may return the same file with the same content (the drafts a catalog
refers to); it is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from orchscan.analyzer.pipeline import ScanResult
from orchscan.analyzer.thresholds import FlowThresholds
from orchscan.collectors.openapi.model import SpecSet
from orchscan.reports.arazzo.draft_set import DraftSet, draft_workflows
from orchscan.reports.backstage import catalog_files
from orchscan.reports.history.markdown import changes_section
from orchscan.reports.history.tracking import ScanHistory
from orchscan.reports.html.render import render_html
from orchscan.reports.json_report import render_json
from orchscan.reports.markdown import render_markdown


@dataclass(frozen=True)
class ReportContext:
    """What every reporter may use: the scan result, the specs and the drafts made from them.

    The drafts belong to the analysis every report renders, whichever files are written: the
    HTML report shows them and findings.json links to them also when no ``arazzo`` files are
    asked for. Build it with :func:`report_context`. ``history`` is set when the scan was
    recorded into a history file (``scan --history``); ``trace_url`` is the ``--trace-url``
    template that links example trace ids into a trace UI.
    """

    result: ScanResult
    specs: SpecSet | None
    drafts: DraftSet
    generated_at: datetime | None = None
    history: ScanHistory | None = None
    trace_url: str | None = None


def report_context(
    result: ScanResult,
    specs: SpecSet | None,
    *,
    thresholds: FlowThresholds,
    generated_at: datetime | None = None,
    history: ScanHistory | None = None,
    trace_url: str | None = None,
) -> ReportContext:
    """The one context every reporter of a scan renders from, drafts included."""
    drafts = draft_workflows(result, specs, thresholds=thresholds)
    return ReportContext(result, specs, drafts, generated_at, history, trace_url)


def _arazzo(context: ReportContext) -> dict[str, str | bytes]:
    return dict(context.drafts.files())


def _json(context: ReportContext) -> dict[str, str | bytes]:
    arazzo = context.drafts.file_of_flow()
    return {"findings.json": render_json(context.result.analysis, arazzo_files=arazzo)}


def _html(context: ReportContext) -> dict[str, str | bytes]:
    html = render_html(
        context.result.analysis,
        arazzo=context.drafts.text_of_owner(),
        generated_at=context.generated_at,
        history=context.history,
        trace_url=context.trace_url,
    )
    return {"report.html": html}


def _markdown(context: ReportContext) -> dict[str, str | bytes]:
    # By flow: an orchestrator's flow with too little evidence has no draft.
    drafted = context.drafts.text_of_flow()
    text = render_markdown(
        context.result.analysis,
        arazzo=drafted,
        generated_at=context.generated_at,
        changes=changes_section(context.history) if context.history else (),
    )
    return {"summary.md": text}


def _backstage(context: ReportContext) -> dict[str, str | bytes]:
    return catalog_files(context.result.analysis, context.drafts)


Reporter = Callable[[ReportContext], dict[str, str | bytes]]

#: Report name -> reporter.
REPORTS: dict[str, Reporter] = {
    "arazzo": _arazzo,
    "json": _json,
    "html": _html,
    "markdown": _markdown,
    "backstage": _backstage,
}
