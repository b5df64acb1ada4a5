"""The HTML audit report: one self-contained page that works offline from ``file://``.

The page is rendered by a logic-free jinja2 template from the plain data of
:mod:`reports.html.view_model`. Span data is untrusted, so the environment autoescapes everything;
the only markup passed through unescaped is the SVG drawn by this package (from escaped labels)
and the package's own CSS and JavaScript.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from types import MappingProxyType

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from orchscan.analyzer.results import Analysis
from orchscan.reports.history.tracking import ScanHistory
from orchscan.reports.html.graph_svg import render_graph
from orchscan.reports.html.history_view import build_history_view
from orchscan.reports.html.trace_links import check_trace_url
from orchscan.reports.html.view_model import build_view

_NO_DRAFTS: Mapping[str, str] = MappingProxyType({})


def render_html(
    analysis: Analysis,
    *,
    arazzo: Mapping[str, str] = _NO_DRAFTS,
    generated_at: datetime | None = None,
    history: ScanHistory | None = None,
    trace_url: str | None = None,
) -> str:
    """Render the audit report; ``arazzo`` maps a flow id or owner to its draft workflow YAML.

    ``generated_at`` defaults to ``SOURCE_DATE_EPOCH`` when set, else the page carries no
    timestamp, so the same analysis always gives the same bytes. With ``history`` (a recorded
    scan) the page also says what changed since the previous scan and draws the trends.
    ``trace_url`` (checked by :func:`reports.html.trace_links.check_trace_url`) turns example
    trace ids into links.
    """
    if trace_url is not None:
        check_trace_url(trace_url)
    view = build_view(
        analysis,
        render_graph(analysis),
        arazzo=arazzo,
        generated_at=generated_at or build_time(),
        trace_url=trace_url,
    )
    script = _static("report.js")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            view=view,
            history=build_history_view(history) if history else None,
            css=_static("report.css"),
            js=script,
            csp=content_security_policy(script),
        )
    )


def content_security_policy(script: str) -> str:
    """Allow nothing remote and only our own script (by hash): a second line of defence behind escaping.

    ``base-uri`` and ``form-action`` are not covered by ``default-src``: without them an injected
    ``<base>`` could redirect the page's relative links and an injected form could post data away.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def build_time() -> datetime | None:
    """The reproducible-build timestamp, when the environment sets one."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else None


@cache
def _environment() -> Environment:
    # select_autoescape() does not match "*.html.j2", so autoescape is switched on for every template.
    env = Environment(
        loader=PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["svg"] = Markup  # only for SVG this package drew from escaped labels
    return env


@cache
def _static(name: str) -> Markup:
    """Our own CSS/JS, inlined so the page needs nothing from the network."""
    text = (files(__package__) / "static" / name).read_text(encoding="utf-8")
    if "</" + "style" in text.lower() or "</" + "script" in text.lower():
        raise ValueError(f"reports/html/static/{name} would close its inline element")
    return Markup(text)
