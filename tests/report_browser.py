"""Opening an HTML report in a real headless Chromium, for the browser tests.

Screenshots land in ``tests/artifacts/`` (git-ignored) for a human to look at. Locally the tests
skip when Chromium or Playwright is missing; under CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from paths import TESTS

ARTIFACTS = TESTS / "artifacts"
CHROMIUM = os.environ.get("ORCHSCAN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The window the report's promises are made for (page height, first view of the graph).
VIEWPORT = {"width": 1400, "height": 1000}


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: a missing tool must not pass the suite there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run under CI: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable(f"no Chromium at {CHROMIUM} (set ORCHSCAN_CHROMIUM or install chromium)")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield browser
        browser.close()


class Page:
    """An opened report with every console error, page error and dialog it produced."""

    def __init__(self, browser: Any, html: str, path: Path, *, init_script: str = "") -> None:
        path.write_text(html, encoding="utf-8")
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.grant_permissions(["clipboard-read", "clipboard-write"])
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def dismiss(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", dismiss)
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def count_visible(self, selector: str) -> int:
        return int(
            self.page.eval_on_selector_all(
                selector, "els => els.filter(e => getComputedStyle(e).display !== 'none').length"
            )
        )

    def count_dimmed(self, selector: str) -> int:
        return int(
            self.page.eval_on_selector_all(selector, "els => els.filter(e => e.matches('.is-dimmed')).length")
        )

    def height(self) -> int:
        return int(self.page.evaluate("document.documentElement.scrollHeight"))

    def screenshot(self, name: str, selector: str | None = None) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        if selector:
            self.page.locator(selector).first.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        else:
            self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def graph_id(name: str, html: str) -> str:
    """The graph id the report gave a service, read from the focus control."""
    marker = f">{name}</option>"
    start = html.rindex('<option value="', 0, html.index(marker)) + len('<option value="')
    return html[start : html.index('"', start)]
