"""Links from example trace ids into the reviewer's own trace UI (``--trace-url TEMPLATE``).

The template comes from the command line, the trace ids from span data. Only http(s) templates
holding ``{trace_id}`` are accepted, and only ids that are plain hex (as collectors normalise
them) are put into a link, percent-encoded; anything else stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

#: What ``--trace-url`` replaces with each trace id.
PLACEHOLDER = "{trace_id}"

_TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,64}$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\"'<>\\`]")


class TraceUrlError(ValueError):
    """A ``--trace-url`` template that would not give a usable, safe link."""


@dataclass(frozen=True)
class TraceRef:
    """An example trace id, and its link into the trace UI when a template was given."""

    id: str
    url: str | None


def check_trace_url(template: str) -> str:
    """Return ``template`` when it is an http(s) URL holding ``{trace_id}``, else explain why not."""
    if PLACEHOLDER not in template:
        raise TraceUrlError(
            f"the template must contain {PLACEHOLDER}, e.g. https://jaeger.example/trace/{PLACEHOLDER}"
        )
    if _UNSAFE.search(template):
        raise TraceUrlError("the template must not hold spaces, quotes, angle brackets or control characters")
    parts = urlsplit(template.replace(PLACEHOLDER, "0"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TraceUrlError("the template must be an http:// or https:// URL")
    return template


def trace_refs(ids: tuple[str, ...], template: str | None) -> tuple[TraceRef, ...]:
    """The ids with their links (none without a template, or for an id that is not plain hex)."""
    return tuple(TraceRef(i, _link(template, i)) for i in ids)


def _link(template: str | None, trace_id: str) -> str | None:
    if template is None or not _TRACE_ID.match(trace_id):
        return None
    return template.replace(PLACEHOLDER, quote(trace_id, safe=""))
