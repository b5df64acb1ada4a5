"""Span text made printable for terminals and text artefacts; YAML that escapes but round-trips."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchscan.reports.untrusted import UNSAFE, dump_yaml, printable

#: Each attack's bytes and what a reader must see instead.
ATTACKS = {
    "\x1b[2J\x1b[H": "\\x1b[2J\\x1b[H",  # clear the screen, cursor home
    "ok\rFAIL": "ok\\x0dFAIL",  # overwrite the line
    # An OSC 8 hyperlink.
    "\x1b]8;;http://evil/\x07link\x1b]8;;\x07": "\\x1b]8;;http://evil/\\x07link\\x1b]8;;\\x07",
    "admin\u202etxt.exe": "admin\\u202etxt.exe",  # right-to-left override
    "\u2066isolated\u2069": "\\u2066isolated\\u2069",
    "line\u2028break": "line\\u2028break",
    "c1\x9bcsi": "c1\\x9bcsi",
}


def test_terminal_attacks_become_visible_escapes() -> None:
    for attack, shown in ATTACKS.items():
        assert printable(attack) == shown
    assert printable("plain ünïcode → ok") == "plain ünïcode → ok"


def test_yaml_escapes_unsafe_characters_and_keeps_readable_unicode() -> None:
    data = {"name": "pay\x1b[31mment\u202e", "route": "/caf\u00e9 → /bar", "list": ["a\rb"]}
    text = dump_yaml(data, sort_keys=False)
    assert yaml.safe_load(text) == data
    assert not UNSAFE.search(text.replace("\n", ""))
    assert "route: /café → /bar" in text


@given(st.dictionaries(st.text(max_size=20), st.lists(st.text(max_size=60), max_size=3), max_size=4))
def test_any_text_round_trips_through_yaml_without_raw_unsafe_characters(data: dict[str, list[str]]) -> None:
    text = dump_yaml(data, width=40)
    assert yaml.safe_load(text) == data
    assert not UNSAFE.search(text.replace("\n", ""))


@given(st.text())
def test_printable_output_never_holds_an_unsafe_character(text: str) -> None:
    assert not UNSAFE.search(printable(text))
