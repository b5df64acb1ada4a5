"""YAML written from span data: no hidden or reordering character reaches the text raw."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchscan.reports.yaml_text import render_yaml, render_yaml_documents

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
