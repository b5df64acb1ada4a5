"""The span table's documentation lists exactly the columns of the schema, at its version."""

from __future__ import annotations

import re

from paths import ROOT

from orchscan.collectors.model.spans import COLUMNS, SCHEMA, SCHEMA_VERSION


def test_every_column_is_documented_with_its_type() -> None:
    doc = (ROOT / "docs" / "span-table.md").read_text()
    documented = re.findall(r"^\| `([a-z0-9_]+)` \| `([^`]+)` \|", doc, flags=re.MULTILINE)
    assert [name for name, _ in documented] == list(COLUMNS)
    assert [dtype for _, dtype in documented] == [str(SCHEMA.field(name).type) for name in COLUMNS]
    assert f"schema version {SCHEMA_VERSION}" in doc
