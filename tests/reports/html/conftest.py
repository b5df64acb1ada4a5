"""The browser the report tests share (one Chromium per test module)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from report_browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance
