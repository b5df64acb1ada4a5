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


class EscapingDumper(yaml.SafeDumper):
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


#: libyaml's emitter, when PyYAML was built with it: about ten times faster than the Python one.
_LIBYAML: type[yaml.SafeDumper] | None = getattr(yaml, "CSafeDumper", None)


def render_yaml(document: Mapping[str, Any]) -> str:
    """YAML text of one document, keys in the order they were built."""
    document = dict(document)
    return yaml.dump(
        document, Dumper=_dumper_for([document]), sort_keys=False, allow_unicode=True, width=WIDTH
    )


def render_yaml_documents(documents: Iterable[Mapping[str, Any]]) -> str:
    """YAML text of several documents in one stream, each starting with ``---``."""
    listed = [dict(d) for d in documents]
    return yaml.dump_all(
        listed,
        Dumper=_dumper_for(listed),
        sort_keys=False,
        allow_unicode=True,
        width=WIDTH,
        explicit_start=True,
    )


def _dumper_for(documents: list[dict[str, Any]]) -> type[yaml.SafeDumper]:
    """libyaml's emitter where it writes the very text ours does, else ours.

    The two agree on documents whose strings are all printable and inside the Basic
    Multilingual Plane (libyaml escapes characters beyond it) and whose keys are not empty
    (libyaml writes an empty key plainly, ours as a complex key); a test holds them to it.
    """
    if _LIBYAML is not None and all(_plain(document) for document in documents):
        return _LIBYAML
    return EscapingDumper


def _plain(value: object) -> bool:
    if isinstance(value, str):
        return value.isprintable() and (value.isascii() or max(value) < "\U00010000")
    if isinstance(value, Mapping):
        return all(
            (not isinstance(key, str) or key != "") and _plain(key) and _plain(item)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    return True
