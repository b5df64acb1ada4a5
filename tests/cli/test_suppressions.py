"""Reading suppression files: YAML and JSON, safely, every mistake named with its file and entry."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from orchscan.analyzer.results import Suppression
from orchscan.suppressions import MAX_FILE_BYTES, SuppressionError, load_suppressions, today

YAML = """\
# accepted findings
suppressions:
  - fingerprint: 9C1F0E2D3B4A5968
    reason: Shipping dedupes on the order id
    expires: 2025-09-30
  - rule: missing-trace-context
    service: legacy-billing
    reason: "Third-party code"
"""


def test_yaml_and_json_files_give_the_same_entries(tmp_path: Path) -> None:
    as_yaml = tmp_path / "accepted.yaml"
    as_yaml.write_text(YAML)
    entries = load_suppressions(as_yaml)
    assert entries == (
        Suppression(
            reason="Shipping dedupes on the order id",
            origin=f"{as_yaml}: suppressions[0]",
            fingerprint="9c1f0e2d3b4a5968",
            expires=date(2025, 9, 30),
        ),
        Suppression(
            reason="Third-party code",
            origin=f"{as_yaml}: suppressions[1]",
            rule="missing-trace-context",
            service="legacy-billing",
        ),
    )
    as_json = tmp_path / "accepted.json"
    as_json.write_text(
        json.dumps(
            {
                "suppressions": [
                    {
                        "fingerprint": "9c1f0e2d3b4a5968",
                        "reason": "Shipping dedupes on the order id",
                        "expires": "2025-09-30",
                    },
                    {
                        "rule": "missing-trace-context",
                        "service": "legacy-billing",
                        "reason": "Third-party code",
                    },
                ]
            }
        )
    )
    from_json = load_suppressions(as_json)
    assert [dataclasses.replace(e, origin="") for e in from_json] == [
        dataclasses.replace(e, origin="") for e in entries
    ]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing accepted yet\n")
    assert load_suppressions(empty) == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("suppressions: [unclosed", "malformed suppression file"),
        ("- a list\n", "expected a mapping with one key, 'suppressions'"),
        ("ignore: []\n", "expected a mapping with one key, 'suppressions'"),
        ("suppressions: {a: 1}\n", "'suppressions' must be a list of entries"),
        ("suppressions: [3]\n", "suppressions[0]: expected a mapping"),
        ("suppressions:\n  - fingerprint: 0123456789abcdef\n", "suppressions[0]: a reason is required"),
        (
            "suppressions:\n  - {fingerprint: 0123456789abcdef, reason: ' '}\n",
            "reason must be a non-empty string",
        ),
        (
            "suppressions:\n  - {fingerprint: xyz, reason: r}\n",
            "fingerprint must be 16 hex digits, got 'xyz'",
        ),
        (
            "suppressions:\n  - {rule: missing-idempotency, reason: r}\n",
            "needs a fingerprint, or both a rule and a service",
        ),
        (
            "suppressions:\n  - {fingerprint: 0123456789abcdef, rule: unbounded-wait, reason: r}\n",
            "give a fingerprint, or a rule and a service, not both",
        ),
        ("suppressions:\n  - {rule: no-such-rule, service: s, reason: r}\n", "unknown rule 'no-such-rule'"),
        (
            "suppressions:\n  - {rule: unbounded-wait, service: s, reason: r, until: x}\n",
            "unknown key(s) until",
        ),
        (
            "suppressions:\n  - {rule: unbounded-wait, service: s, reason: r, expires: soon}\n",
            "expires must be a date",
        ),
        (
            "suppressions:\n  - {rule: unbounded-wait, service: s, reason: r, expires: 2024-01-01T10:00}\n",
            "expires must be a date",
        ),
        ("x: !!python/object/apply:os.system ['true']\n", "malformed suppression file"),
    ],
)
def test_mistakes_are_named_with_file_and_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(content)
    with pytest.raises(SuppressionError) as caught:
        load_suppressions(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(SuppressionError, match="larger than 4 MB"):
        load_suppressions(path)


def test_expiry_is_judged_on_source_date_epoch_when_set() -> None:
    assert today("1717200000") == date(2024, 6, 1)
    assert today(None) >= date(2024, 6, 1)
