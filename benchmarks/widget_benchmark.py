"""Measure the drawing widget of a rendered tutorial.html in Debian's chromium, offline.

    python benchmarks/widget_benchmark.py --out results [--screenshot docs/images/widget.png]

Prints the page weight, the time from opening the page to a ready model, and the latency from
a pen event to the updated answer while drawing MNIST test digits (median, 95th percentile,
max). With --screenshot, also writes a picture of the widget with a drawn digit (the README's
and, copied to mnist_core/web/widget.png, the PDF's still).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_widget import ARGS, CHROMIUM, Page, _draw_mouse, _strokes  # noqa: E402


def _two(box: dict) -> list[list[tuple[float, float]]]:
    """A hand-drawn-looking 2 in one stroke: an arc, a diagonal, a base line."""
    s = box["width"] / 280
    angles = np.linspace(np.radians(200), np.radians(395), 14)
    arc = [(140 + 55 * np.cos(a), 105 + 50 * np.sin(a)) for a in angles]
    path = arc + [(115, 175), (85, 222), (150, 218), (205, 220)]
    return [[(box["x"] + x * s, box["y"] + y * s) for x, y in path]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--digits", type=int, default=20)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from mnist_core.data import load_mnist

    mnist = load_mnist(args.data_dir)
    html = args.out / "tutorial.html"
    page_mb = html.stat().st_size / 1e6
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        loads = []
        for _ in range(3):
            page = Page(browser, html, viewport={"width": 1280, "height": 900})
            loads.append(page.page.evaluate("window.mnistDigit.stats.loadMs"))
            page.close()
        page = Page(browser, html, viewport={"width": 1280, "height": 900})
        right = 0
        for i in range(args.digits):
            page.page.click("button#digit-clear")
            pad = page.page.locator("canvas#digit-canvas")
            pad.scroll_into_view_if_needed()
            _draw_mouse(page, _strokes(mnist.x_test[i], pad.bounding_box()))
            page.page.wait_for_timeout(50)
            page.page.wait_for_function("!window.mnistDigit.busy")
            right += page.page.text_content("#digit-prediction")[0] == str(mnist.y_test[i])
        lat = page.page.evaluate("window.mnistDigit.stats.latencies")
        if args.screenshot:
            page.page.click("button#digit-clear")
            pad = page.page.locator("canvas#digit-canvas")
            _draw_mouse(page, _two(pad.bounding_box()))
            page.page.wait_for_timeout(100)
            page.page.wait_for_function("!window.mnistDigit.busy")
            page.page.locator("#digit-widget").screenshot(path=str(args.screenshot))
        assert not page.errors and not page.requests, (page.errors, page.requests)
        page.close()
        browser.close()
    print(f"page: {html} {page_mb:.2f} MB; model ready after {statistics.median(loads):.0f} ms "
          f"(median of 3 loads: {', '.join(f'{v:.0f}' for v in loads)})")
    print(f"{args.digits} traced test digits: {right} right; {len(lat)} updates, latency from "
          f"pen event to answer: median {statistics.median(lat):.1f} ms, 95th percentile "
          f"{np.percentile(lat, 95):.1f} ms, max {max(lat):.1f} ms")


if __name__ == "__main__":
    main()
