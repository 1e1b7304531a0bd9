"""The README's page screenshots, taken from a running Inferensys (normally `make demo`).

    make demo                       # in another terminal: the demo on http://127.0.0.1:8000
    make screenshots                # or: .venv/bin/python bin/screenshots.py [--base-url URL]

Signs in as the demo's admin (`--user`, password from DEMO_PASSWORD or the demo default), which sees
every page, then opens each page of the navigation and the detail pages reached from them (a
budget, a model's routing page, an ingest run's rejected rows, a deployment's estimate accuracy) in
Debian's Chromium, waits for the charts to be drawn, and writes the first screen at 1280 px to
docs/screenshots/<page>.png. A page that does not answer 200 or logs a console error stops the run
with its name: a screenshot of a broken page never replaces a good one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
# Third-party pages (Swagger UI, the Django admin): not ours to show.
SKIP = {"API docs", "Django admin"}
# Detail pages: the first link on `page` whose address matches, saved as `name`.
DETAILS = (
    ("Budgets", r"^/governance/budgets/\d+/$", "Budget detail"),
    ("Models", r"^/routing/models/[^/]+/$", "Model routing"),
    ("Ingestion", r"^/ingestion/runs/\d+/rejected/$", "Rejected rows"),
    ("Overview", r"^/estimates/[^/]+/$", "Estimate accuracy"),
)
WAIT_FOR_CHARTS = (
    "Array.from(document.querySelectorAll('.chart:not(.chart--empty)'))"
    ".every(c => c.querySelector('.main-svg'))"
)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("INFERENSYS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--user", default="admin")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    password = os.environ.get("DEMO_PASSWORD") or "inferensys-demo"
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is needed: apt-get install chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.base_url.rstrip("/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        _wait_for(page, f"{base}/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if page.locator(".sidenav").count() == 0:
            raise SystemExit(f"signing in as {args.user!r} failed: set DEMO_PASSWORD to the demo's password")
        links = page.locator(".sidenav a")
        nav = {
            links.nth(i).inner_text().strip(): links.nth(i).get_attribute("href")
            for i in range(links.count())
        }
        targets = [(label, path) for label, path in nav.items() if label not in SKIP]
        details = []
        for label, path in targets:
            _shoot(page, base, label, path, args.out, errors)
            for source, pattern, name in DETAILS:
                if source != label:
                    continue
                hrefs = page.eval_on_selector_all(
                    "a[href]", "links => links.map(a => a.getAttribute('href'))"
                )
                found = next((href for href in hrefs if re.match(pattern, href.split("?")[0])), None)
                if found is None:
                    print(f"  no link to a {name.lower()} on {label}: skipped")
                else:
                    details.append((name, found))
        for name, path in details:
            _shoot(page, base, name, path, args.out, errors)
        browser.close()
    return 0


def _wait_for(page, url: str, seconds: float = 60) -> None:
    """Open `url`, retrying while the server is still starting (make demo prints its address early)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            page.goto(url)
            return
        except PlaywrightError as error:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{url} does not answer ({error.message.splitlines()[0]}); is make demo running?"
                )
            time.sleep(1)


def _shoot(page, base: str, label: str, path: str, out: Path, errors: list[str]) -> None:
    errors.clear()
    response = page.goto(f"{base}{path}", wait_until="load")
    if response is None or response.status != 200:
        raise SystemExit(f"{label} ({path}): HTTP {response.status if response else 'no answer'}")
    page.wait_for_function(WAIT_FOR_CHARTS, timeout=15_000)
    page.wait_for_timeout(300)  # Plotly's transitions
    if errors:
        raise SystemExit(f"{label} ({path}): console error: {errors[0]}")
    target = out / f"{slug(label)}.png"
    page.screenshot(path=str(target), full_page=False)
    print(f"{target.relative_to(REPO) if target.is_relative_to(REPO) else target}  {label}  {path}")


if __name__ == "__main__":
    sys.exit(main())
