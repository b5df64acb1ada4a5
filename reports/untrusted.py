"""Text from span data on its way to a terminal or a text artefact: made visible, never obeyed.

Service names, routes and messages come from whoever wrote the spans. Printed raw, an ANSI
escape can recolour or rewrite a terminal, a carriage return can overwrite a line, and a bidi
control can make a reviewer read text in an order other than the bytes' (Trojan Source,
CVE-2021-42574). :func:`printable` turns every character Python does not call printable
(controls, format characters such as bidi and zero-width ones, line and paragraph separators,
unusual spaces) into a visible escape for terminals, Markdown and SARIF/JUnit messages. It is the
same rule :mod:`orchscan.reports.yaml_text` applies to the YAML orchscan writes.
"""

from __future__ import annotations


def _escape(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every non-printable character replaced by a visible escape such as ``\\x1b``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)
