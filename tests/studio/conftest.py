"""Loupe Studio in a real headless Chromium (Debian's, driven by Playwright's Python package).

One browser per session; each test gets a fresh context and page that records console errors,
page errors and every request to a host other than the server's, and saves its screenshots
under pytest's tmp_path (never in the repository)."""
from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.conftest import TEST_API_KEY

CHROMIUM = Path(os.environ.get("LOUPE_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser():
    # a missing browser fails (make install brings Debian's chromium): a skip would hide the studio's tests
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make install` as root (apt-get install chromium) "
                    "or set LOUPE_CHROMIUM to a Chromium binary")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--disable-gpu"])
        yield browser
        browser.close()


class Studio:
    def __init__(self, page, base_url: str, shots: Path) -> None:
        self.page, self.base_url, self.shots = page, base_url, shots
        self.problems: list[str] = []
        self.foreign: list[str] = []
        # the thumbnails' SAS links point at the blob endpoint (Azurite on the same loopback host)
        self.host = urlsplit(base_url).hostname
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("request", self._request)

    def _request(self, request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("blob", "data") and url.hostname != self.host:
            self.foreign.append(request.url)

    def open(self) -> None:
        self.page.goto(self.base_url + "/studio/")

    def sign_in(self, key: str = TEST_API_KEY) -> None:
        self.page.get_by_label("API key", exact=True).fill(key)
        self.page.get_by_role("button", name="Sign in", exact=True).click()

    def create_project(self, name: str, kind: str | None = None) -> None:
        """Create a project through the form (``kind``: the Type option's label; None: the default)."""
        page = self.page
        page.get_by_label("Name", exact=True).fill(name)
        if kind is not None:
            page.get_by_label("Type", exact=True).select_option(kind)
        page.get_by_role("button", name="Create project", exact=True).click()
        page.get_by_role("heading", name=name, exact=True).wait_for()

    def add_tag(self, tag: str) -> None:
        self.page.get_by_label("New tag", exact=True).fill(tag)
        self.page.get_by_role("button", name="Add tag", exact=True).click()
        self.page.get_by_text(re.compile(rf"\d: {re.escape(tag)} \(0\)")).wait_for()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        with Image.open(path) as image:
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 1, f"screenshot {name} is blank"
        return path

    def both(self, name: str) -> None:
        """The page as it is at 1280x800 and at a 390 px phone: screenshots, not blank, no sideways scroll."""
        self.shot(f"{name}-desktop")
        self.page.set_viewport_size({"width": 390, "height": 800})
        try:
            self.page.wait_for_timeout(100)  # a relayout
            width = self.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{name} scrolls sideways at 390 px: {width}"
            self.shot(f"{name}-phone")
        finally:
            self.page.set_viewport_size({"width": 1280, "height": 800})

    def download_onnx_export(self, shot: str, saved: Path) -> list[str]:
        """On the Export tab: the ONNX button, Done, the download link saved to ``saved``; the zip's names."""
        row = self.page.locator('li[data-export="onnx"]')
        row.get_by_role("button", name="Export ONNX", exact=True).click()
        link = row.get_by_role("link", name="Download ONNX (zip)")
        link.wait_for(timeout=300_000)
        assert row.locator(".export-status").inner_text() == "Done"
        self.both(shot)
        with self.page.expect_download() as info:
            link.click()
        info.value.save_as(saved)
        with zipfile.ZipFile(saved) as package:
            return package.namelist()

    def check_clean(self) -> None:
        assert self.problems == [], self.problems
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"


@pytest.fixture
def studio(browser, api_server, tmp_path) -> Iterator[Studio]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    studio = Studio(page, api_server.url.rstrip("/"), tmp_path)
    yield studio
    context.close()
