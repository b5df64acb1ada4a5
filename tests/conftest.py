"""Shared test fixtures: paths to the copied real-world inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths import FIXTURES


@pytest.fixture
def fixtures() -> Path:
    """Folder of third-party inputs copied with their provenance notes."""
    return FIXTURES
