"""The browser-test harness: Debian's Chromium driven by Playwright, axe-core injected on every page.

- Chromium is Debian's binary (`playwright install` has no CDN to download from here).
- axe-core comes from npm into .data/node (bin/test installs it, as it does Azurite); it is injected
  with `page.evaluate`, which the pages' Content-Security-Policy does not apply to, so the policy stays
  as strict in tests as in production.
- `PageCheck.visit` loads a page and fails on any console error, uncaught exception, failed asset,
  sideways overflow at the viewport's width (1280 px unless a test changes it: the page must not
  scroll horizontally, nor a table be wider than its box) or serious/critical axe violation;
  `login` fails on any console error or failed asset of the login page or the page it lands on;
  `screenshot` writes PNGs under the artifacts folder (INFERENSYS_TEST_ARTIFACTS, default
  .data/test-artifacts) for CI to keep. (The README's screenshots are of the demo's data:
  bin/screenshots.py, `make screenshots`.)
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
AXE_JS = REPO / ".data" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("INFERENSYS_TEST_ARTIFACTS", REPO / ".data" / "test-artifacts"))
WIDTHS = (1280, 2560)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What counts as a failure: the bar is zero serious or critical violations.
AXE_FAILING_IMPACTS = {"serious", "critical"}
# Sideways overflow at the current viewport: the page itself must not scroll horizontally, and no table
# may be wider than the box it sits in (which would clip it, or make its `.table-wrap` scroll), unless it
# is in a wrapper marked `.table-wrap--scroll`, the one place a sideways scroll is intended.
OVERFLOW_JS = """() => {
  const problems = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} px wide in ${root.clientWidth} px`);
  }
  for (const table of document.querySelectorAll("table")) {
    const box = table.parentElement;
    const style = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = Math.round(table.getBoundingClientRect().width);
    if (width === 0 || table.closest(".table-wrap--scroll")) continue;
    if (width > room + 1) {
      const heading = (table.closest("article, section") || document.body).querySelector("h2, h1");
      const name = table.id || table.getAttribute("aria-labelledby") || table.getAttribute("aria-label")
        || (table.caption && table.caption.textContent.trim())
        || `in "${heading ? heading.textContent.trim() : "?"}"`;
      problems.push(`table ${name} is ${width} px wide in ${Math.round(room)} px`);
    }
  }
  return problems;
}"""


def missing_requirements() -> str:
    """Why browser tests cannot run here ('' when they can)."""
    if CHROMIUM is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    if not AXE_JS.exists():
        return "axe-core is not installed (bin/test installs it with npm into .data/node)"
    return ""


@dataclass
class PageCheck:
    """One browser tab whose problems are collected while it is used."""

    page: object
    base_url: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on(
            "requestfailed",
            # net::ERR_ABORTED is a request the page itself cancelled by navigating (a reload), not a
            # failed asset.
            lambda request: (
                None
                if "ERR_ABORTED" in (request.failure or "")
                else self.problems.append(f"request failed: {request.url} {request.failure}")
            ),
        )

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def login(self, username: str, password: str = "pw-for-tests") -> None:
        self.page.goto(f"{self.base_url}/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector(".sidenav")
        self.page.wait_for_load_state("load")
        # The login page and the page it lands on count like any visited page: a missing asset there
        # (a favicon's 404) fails the test, not only one on the pages visited afterwards.
        assert self.problems == [], f"logging in as {username}: {self.problems}"

    def visit(self, path: str) -> int:
        """Open `path`, wait for its charts, and check it; returns the HTTP status."""
        self.problems.clear()
        response = self.page.goto(f"{self.base_url}{path}", wait_until="load")
        status = response.status if response else 0
        # Charts are drawn by scripts after load: wait until every chart container has its SVG.
        self.page.wait_for_function(
            "Array.from(document.querySelectorAll('.chart:not(.chart--empty)'))"
            ".every(c => c.querySelector('.main-svg'))",
            timeout=10_000,
        )
        self.problems += self.overflow_problems()
        return status

    def overflow_problems(self) -> list[str]:
        """What scrolls or sticks out sideways at the current viewport width (every visit checks it)."""
        width = self.page.viewport_size["width"]
        return [f"at {width} px: {problem}" for problem in self.page.evaluate(OVERFLOW_JS)]

    def axe_violations(self) -> list[str]:
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE_JS.read_text())
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            f"{violation['id']} ({violation['impact']}): {violation['help']} — "
            + "; ".join(node["target"][0] if node["target"] else "?" for node in violation["nodes"][:5])
            for violation in result["violations"]
            if violation["impact"] in AXE_FAILING_IMPACTS
        ]

    def screenshot(self, name: str, *, role: str) -> list[Path]:
        """The current page at each width, full height, as artifacts; the viewport is restored."""
        viewport = self.page.viewport_size
        paths = []
        folder = ARTIFACTS / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.wait_for_timeout(150)  # Plotly relayouts on resize
            path = folder / f"{slug(name)}--{role}--{width}.png"
            self.page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        self.page.set_viewport_size(viewport)
        return paths


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
