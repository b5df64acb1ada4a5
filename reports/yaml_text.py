"""YAML text of the documents orchscan writes, with invisible and reordering characters escaped.

Names, routes and messages come from span data. Bidi controls (``U+202E`` ...), zero-width and
other format characters are printable as far as YAML is concerned, so PyYAML writes them raw
(with ``allow_unicode``) and a reviewer reading a draft sees text in another order than a
parser does. A string holding any character Python does not call printable (controls, format
characters, line and paragraph separators, unusual spaces) is written double-quoted with every
non-ASCII character of that string escaped; it loads back to the very same string. All other
strings are written as before, non-ASCII letters included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from yaml.emitter import ScalarAnalysis
from yaml.events import ScalarEvent

#: Line width of the written YAML.
WIDTH = 100


class _Dumper(yaml.SafeDumper):
    """A safe dumper that escapes strings holding characters a reader would not see."""

    def analyze_scalar(self, scalar: str) -> ScalarAnalysis:
        analysis = super().analyze_scalar(scalar)
        if not scalar.isprintable():
            # Only the double-quoted style has escapes.
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis

    def process_scalar(self) -> None:
        event = self.event
        if not (isinstance(event, ScalarEvent) and not event.value.isprintable()):
            super().process_scalar()
            return
        # Outside ASCII, PyYAML's double-quoted writer escapes a character only when unicode is
        # not allowed; turned off for this one string, every hidden character becomes an escape.
        self.allow_unicode = False
        try:
            super().process_scalar()
        finally:
            self.allow_unicode = True


def render_yaml(document: Mapping[str, Any]) -> str:
    """YAML text of one document, keys in the order they were built."""
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=WIDTH)


def render_yaml_documents(documents: Iterable[Mapping[str, Any]]) -> str:
    """YAML text of several documents in one stream, each starting with ``---``."""
    return yaml.dump_all(
        [dict(d) for d in documents],
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=WIDTH,
        explicit_start=True,
    )
