"""Debian's Chromium, headless through Playwright, and a check that a screenshot shows a page.

Chromium is Debian's (``apt-get install chromium fonts-thai-tlwg``); Playwright
never downloads a browser of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, async_playwright

# Playwright adds --headless, --no-sandbox and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium not found: apt-get install chromium fonts-thai-tlwg")
    return path


@asynccontextmanager
async def chromium(home: Path) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, a fresh profile; never a downloaded browser."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home)},  # nothing written to the real home
        )
        try:
            yield browser
        finally:
            await browser.close()


def assert_real_screenshot(path: Path, size: tuple[int, int]) -> None:
    """A PNG of ``size`` with more on it than a blank or one-colour page."""
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == size
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50, f"{len(colours)} colours: blank page?"
    most = max(count for count, _ in colours)
    assert most < 0.97 * size[0] * size[1], "one colour covers the page"
