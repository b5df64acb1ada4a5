"""YAML written from span data: no hidden or reordering character reaches the text raw."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchscan.reports.yaml_text import WIDTH, EscapingDumper, render_yaml, render_yaml_documents

# Trojan-source bidi controls, zero-width characters, a terminal escape, C1 controls, separators.
HIDDEN = "\u202e\u2066\u2069\u200b\u200f\ufeff\x1b[2J\x85\x9b\u2028\u00a0\x00"


def _raw_hidden(text: str) -> set[str]:
    return {ch for ch in text if ch not in "\n" and not ch.isprintable()}


def test_hidden_characters_are_escaped_and_round_trip() -> None:
    document = {
        "name": f"orders{HIDDEN}",
        f"key{HIDDEN}": ["plain", "Zahlungsdienst für Bestellungen"],
        "nested": {"description": "a\u202eb"},
    }
    text = render_yaml(document)
    assert _raw_hidden(text) == set()
    assert "\\u202E" in text and "\\e" in text
    assert yaml.safe_load(text) == document
    # Strings without hidden characters keep their letters readable.
    assert "Zahlungsdienst für Bestellungen" in text


def test_documents_in_one_stream_round_trip() -> None:
    documents = [{"kind": "Component", "name": f"a{HIDDEN}"}, {"kind": "API", "name": "b"}]
    text = render_yaml_documents(documents)
    assert text.startswith("---") and _raw_hidden(text) == set()
    assert list(yaml.safe_load_all(text)) == documents


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5))
def test_any_text_round_trips_without_hidden_characters(document: dict[str, Any]) -> None:
    text = render_yaml(document)
    assert yaml.safe_load(text) == document
    assert _raw_hidden(text) == set()


# Printable text of the Basic Multilingual Plane: where libyaml's emitter is taken.
_PLAIN_TEXT = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0xFFFF), max_size=120).filter(
    str.isprintable
)
_PLAIN_KEYS = _PLAIN_TEXT.filter(bool)
_VALUES = st.recursive(
    st.one_of(_PLAIN_TEXT, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_PLAIN_KEYS, inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300)
@given(st.dictionaries(_PLAIN_KEYS, _VALUES, max_size=5))
def test_the_fast_emitter_writes_the_same_text_as_the_escaping_one(document: dict[str, Any]) -> None:
    """Documents of plain text go through libyaml's emitter: byte for byte what the Python one writes."""
    expected = yaml.dump(document, Dumper=EscapingDumper, sort_keys=False, allow_unicode=True, width=WIDTH)
    assert render_yaml(document) == expected
    assert yaml.safe_load(render_yaml(document)) == document
