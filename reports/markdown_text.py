"""Span-derived text in Markdown: escaped so that it renders as text in any Markdown renderer."""

from __future__ import annotations

import re

from orchscan.reports.untrusted import printable

#: Span-derived texts (names, routes, messages) longer than this are cut with "…".
MAX_TEXT = 300

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~&])")


def escape_markdown(text: str, limit: int = MAX_TEXT) -> str:
    """Backslash-escape the characters that start Markdown or HTML constructs; fold line breaks.

    Control and bidi characters left after folding are written as visible escapes; text longer
    than ``limit`` characters is cut with "…".
    """
    folded = " ".join(text[: limit * 4].split())
    if len(folded) > limit:
        folded = folded[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", printable(folded))
