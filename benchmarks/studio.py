"""Loupe Studio's weight and speed in Debian's Chromium (Playwright) against a private Loupe
(in-memory Azurite + the API in its own process):

- bytes transferred for the first page (the sign-in page: HTML, modules, stylesheet; headers included);
- time until the project list is usable: from navigation start (a reload with the key in the tab's
  session) until the projects table shows its rows, and from the sign-in click;
- a grid of 1,000 images: a project with 1,000 small generated JPEGs uploaded through the API, then the
  time until the Images tab's first page of thumbnails is decoded, and to walk all its pages.

    .venv/bin/python benchmarks/studio.py [--images 1000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import numpy as np
import requests
from _stack import KEY, BenchStack
from PIL import Image

CHROMIUM = os.environ.get("LOUPE_CHROMIUM", "/usr/bin/chromium")
TRAINING = "/customvision/v3.4-preview/training"
PROJECTS_READY = "() => document.querySelectorAll('#view tbody tr td a').length > 0"
GRID_READY = ("n => { const i = [...document.querySelectorAll('.thumb img')];"
              " return i.length === n && i.every(x => x.complete && x.naturalWidth > 0); }")


def small_jpegs(count: int) -> list[bytes]:
    """Distinct 96x72 JPEGs (noise over a colour), about 2 KB each."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        base = rng.integers(0, 256, size=3)
        pixels = np.clip(base + rng.normal(0, 25, size=(72, 96, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
        out.append(buffer.getvalue())
    return out


def make_project(stack: BenchStack, count: int) -> tuple[str, float]:
    headers = {"Training-Key": KEY}
    url = stack.endpoint + TRAINING
    project = requests.post(f"{url}/projects", params={"name": "studio-grid"}, headers=headers, timeout=60).json()
    started = time.perf_counter()
    images = small_jpegs(count)
    for start in range(0, count, 64):
        files = [("imageData", (f"{start + i}.jpg", data, "image/jpeg")) for i, data in enumerate(images[start:start + 64])]
        response = requests.post(f"{url}/projects/{project['id']}/images", files=files, headers=headers, timeout=300)
        response.raise_for_status()
        assert response.json()["isBatchSuccessful"], response.text[:500]
    return project["name"], time.perf_counter() - started


def first_page_bytes(browser, base: str) -> tuple[int, int]:
    """Bytes on the wire (encodedDataLength: headers and bodies) and the number of requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes: dict[str, float] = {}
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
    page.goto(base + "/studio/", wait_until="networkidle")
    page.get_by_label("API key", exact=True).wait_for()
    context.close()
    return int(sum(sizes.values())), len(sizes)


def project_list_times(browser, base: str, rounds: int) -> tuple[list[float], list[float]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(base + "/studio/")
    signin, reload = [], []
    for _ in range(rounds):
        page.evaluate("sessionStorage.clear()")
        page.reload()
        page.get_by_label("API key", exact=True).fill(KEY)
        started = time.perf_counter()
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_function(PROJECTS_READY, polling="raf")
        signin.append((time.perf_counter() - started) * 1000)
        page.reload()  # the key stays in the tab's session: the studio opens on the projects list
        page.wait_for_function(PROJECTS_READY, polling="raf")
        reload.append(page.evaluate("performance.now()"))  # ms since this navigation started
    context.close()
    return signin, reload


def grid_times(browser, base: str, name: str, count: int, rounds: int) -> tuple[list[float], float, int]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(base + "/studio/")
    page.get_by_label("API key", exact=True).fill(KEY)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_function(PROJECTS_READY)
    first = []
    per_page = 24
    for _ in range(rounds):
        page.get_by_role("link", name="Projects", exact=True).click() if first else None
        page.get_by_role("link", name=name, exact=True).click()
        started = time.perf_counter()
        page.wait_for_function(GRID_READY, arg=per_page, polling="raf")
        first.append((time.perf_counter() - started) * 1000)
    # every page of the 1,000, one after the other
    started = time.perf_counter()
    pages = 1
    while not page.get_by_role("button", name="Next page", exact=True).is_disabled():
        before = page.locator(".thumb").first.get_attribute("data-image")
        page.get_by_role("button", name="Next page", exact=True).click()
        page.wait_for_function("b => { const t = document.querySelector('.thumb'); return t && t.dataset.image !== b; }", arg=before)
        shown = page.locator(".thumb").count()
        page.wait_for_function(GRID_READY, arg=shown, polling="raf")
        pages += 1
    walk = (time.perf_counter() - started) * 1000
    heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
    context.close()
    assert pages * per_page >= count, pages
    return first, walk / max(1, pages - 1), heap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with BenchStack() as stack, sync_playwright() as playwright:
        name, upload_s = make_project(stack, args.images)
        print(f"setup: {args.images} images uploaded through the API in {upload_s:.1f} s")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            total, requests_made = first_page_bytes(browser, stack.endpoint)
            print(f"first page: {total} bytes transferred in {requests_made} requests (uncompressed, no cache)")
            signin, reload = project_list_times(browser, stack.endpoint, args.rounds)
            print(f"project list usable: {statistics.median(reload):.0f} ms from navigation start (median of {args.rounds}, "
                  f"max {max(reload):.0f}); {statistics.median(signin):.0f} ms from the sign-in click")
            first, per_page, heap = grid_times(browser, stack.endpoint, name, args.images, args.rounds)
            print(f"grid of {args.images} images: first page of 24 thumbnails decoded {statistics.median(first):.0f} ms after "
                  f"opening the project (median of {args.rounds}, max {max(first):.0f}); each further page "
                  f"{per_page:.0f} ms on average; JS heap {heap / 1e6:.1f} MB")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
