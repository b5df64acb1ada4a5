"""The artefacts a scan can write, by name. CLI choices come from here; a test runs every entry.

Each reporter turns one :class:`ReportContext` into files (path relative to the output folder ->
text, or bytes for copied specs); writing them is the caller's job, so reporters stay pure and
testable. Two reporters may return the same file with the same content (the drafts a catalog
refers to); it is written once. :data:`OUTPUTS` names the top-level files and folders each report
writes in the output folder: the output set replaces only folders made of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from orchscan.analyzer.findings.gate import Gate
from orchscan.analyzer.pipeline import ScanResult
from orchscan.collectors.openapi.model import SpecSet
from orchscan.reports.arazzo.draft_set import DraftSet, draft_workflows
from orchscan.reports.backstage import catalog_files
from orchscan.reports.history.markdown import changes_section
from orchscan.reports.history.tracking import ScanHistory
from orchscan.reports.html.render import render_html
from orchscan.reports.json_report import render_json
from orchscan.reports.junit import render_junit
from orchscan.reports.markdown import render_markdown
from orchscan.reports.sarif import render_sarif


@dataclass(frozen=True)
class ReportContext:
    """What every reporter may use: the scan result, the specs and the drafts made from them.

    The drafts belong to the analysis every report renders, whichever files are written: the
    HTML report shows them and findings.json links to them also when no ``arazzo`` files are
    asked for. Build it with :func:`report_context`. ``history`` is set when the scan was
    recorded into a history file (``scan --history``); ``trace_url`` is the ``--trace-url``
    template that links example trace ids into a trace UI. ``gate`` is the run's ``--fail-on``
    gate (JUnit marks its findings as failures); ``tool_version`` names orchscan's version (SARIF).
    """

    result: ScanResult
    specs: SpecSet | None
    drafts: DraftSet
    generated_at: datetime | None = None
    history: ScanHistory | None = None
    trace_url: str | None = None
    gate: Gate = field(default_factory=Gate)
    tool_version: str = "0"


def report_context(
    result: ScanResult,
    specs: SpecSet | None,
    *,
    generated_at: datetime | None = None,
    history: ScanHistory | None = None,
    trace_url: str | None = None,
    gate: Gate | None = None,
    tool_version: str = "0",
) -> ReportContext:
    """The one context every reporter of a scan renders from, drafts included."""
    drafts = draft_workflows(result, specs)
    return ReportContext(
        result, specs, drafts, generated_at, history, trace_url, gate or Gate(), tool_version
    )


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


def _sarif(context: ReportContext) -> dict[str, str | bytes]:
    return {"results.sarif": render_sarif(context.result.analysis, tool_version=context.tool_version)}


def _junit(context: ReportContext) -> dict[str, str | bytes]:
    return {"junit.xml": render_junit(context.result.analysis, gate=context.gate)}


Reporter = Callable[[ReportContext], dict[str, str | bytes]]

#: Report name -> reporter.
REPORTS: dict[str, Reporter] = {
    "arazzo": _arazzo,
    "json": _json,
    "html": _html,
    "markdown": _markdown,
    "backstage": _backstage,
    "sarif": _sarif,
    "junit": _junit,
}

#: Report name -> the top-level files and folders it writes in the output folder.
OUTPUTS: dict[str, frozenset[str]] = {
    "arazzo": frozenset({"arazzo"}),
    "json": frozenset({"findings.json"}),
    "html": frozenset({"report.html"}),
    "markdown": frozenset({"summary.md"}),
    # The catalog brings the drafts and spec copies its API definitions refer to.
    "backstage": frozenset({"catalog-info.yaml", "arazzo"}),
    "sarif": frozenset({"results.sarif"}),
    "junit": frozenset({"junit.xml"}),
}

#: Reports written when --format is not given; the CI formats and the catalog export (which
#: copies every spec) are asked for by name.
DEFAULT_REPORTS = ("arazzo", "json", "html", "markdown")

#: Reports that are one file, so that ``--out -`` can write them to standard output.
STREAMABLE = ("json", "html", "markdown", "sarif", "junit")
