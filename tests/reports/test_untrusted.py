"""Span text made printable for terminals and text artefacts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchscan.reports.untrusted import printable

#: Each attack's characters and what a reader must see instead.
ATTACKS = {
    "\x1b[2J\x1b[H": "\\x1b[2J\\x1b[H",  # clear the screen, cursor home
    "ok\rFAIL": "ok\\x0dFAIL",  # overwrite the line
    # An OSC 8 hyperlink.
    "\x1b]8;;http://evil/\x07link\x1b]8;;\x07": "\\x1b]8;;http://evil/\\x07link\\x1b]8;;\\x07",
    "admin\u202etxt.exe": "admin\\u202etxt.exe",  # right-to-left override
    "\u2066isolated\u2069": "\\u2066isolated\\u2069",
    "line\u2028break": "line\\u2028break",
    "zero\u200bwidth": "zero\\u200bwidth",
    "c1\x9bcsi": "c1\\x9bcsi",
    "tag\U000e0041": "tag\\U000e0041",
}


def test_terminal_attacks_become_visible_escapes() -> None:
    for attack, shown in ATTACKS.items():
        assert printable(attack) == shown
    assert printable("plain ünïcode → ok") == "plain ünïcode → ok"


@given(st.text())
def test_printable_output_is_always_printable(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    assert (shown == text) == text.isprintable()
