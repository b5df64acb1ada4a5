"""Where the tests find the repository, the copied real-world inputs and the sample landscape."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
SAMPLE = ROOT / "sample_traces"
