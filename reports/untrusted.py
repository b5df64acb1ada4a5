"""Text from span data on its way to a terminal or a text artefact: made visible, never obeyed.

Service names, routes and messages come from whoever wrote the spans. Printed raw, an ANSI
escape can recolour or rewrite a terminal, a carriage return can overwrite a line, and a bidi
control can make a reviewer read text in an order other than the bytes' (Trojan Source,
CVE-2021-42574). :func:`printable` turns each such character into a visible escape (``\\x1b``,
``\\u202e``) for terminals, Markdown, SARIF/JUnit messages and the like; :func:`dump_yaml`
writes YAML in which such characters appear only as double-quoted escapes, so the data still
round-trips exactly.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

#: C0 and C1 control characters (ESC, CR, LF, BEL, CSI ...), DEL, the Unicode line and paragraph
#: separators and every bidi control (embeddings, overrides, isolates and marks).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control and bidi characters replaced by visible escapes such as ``\\x1b``."""
    return UNSAFE.sub(_escape, text)


class _Dumper(yaml.SafeDumper):
    """A safe dumper that double-quotes, and so escapes, any scalar with an unsafe character."""

    def analyze_scalar(self, scalar: str) -> Any:
        analysis = super().analyze_scalar(scalar)
        if UNSAFE.search(scalar):
            # Only the double-quoted style can write escapes; rule out the others.
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        if not UNSAFE.search(text):
            super().write_double_quoted(text, split)
            return
        # With allow_unicode PyYAML writes bidi controls raw; without it, it escapes every
        # non-ASCII character of this one scalar, which is still exact YAML.
        allow_unicode, self.allow_unicode = self.allow_unicode, False
        try:
            super().write_double_quoted(text, split)
        finally:
            self.allow_unicode = allow_unicode


def dump_yaml(data: Any, **options: Any) -> str:
    """``yaml.safe_dump`` (readable Unicode by default) that never writes a control or bidi character raw."""
    options.setdefault("allow_unicode", True)
    text: str = yaml.dump(data, Dumper=_Dumper, **options)
    return text
