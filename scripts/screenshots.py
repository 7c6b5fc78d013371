"""Screenshots of the Dagster UI for the README: the asset graph, a partitions page and a run.

Run after `make demo` with `make dev` running (or any UI on --url):

    .venv/bin/pip install -e '.[screenshots]'      # playwright, the Python driver only
    apt-get install chromium                       # the browser (Debian's; no browser is downloaded)
    .venv/bin/python scripts/screenshots.py        # writes docs/images/*.png

Headless Chromium at /usr/bin/chromium (or --chromium) is driven by Playwright. The pages are Dagster's own, so the
images are what a user sees; refreshing them is running this script again.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Without these, Chromium reaches for Google's services at start and this machine's closed network refuses them.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _pages(url: str) -> list[tuple[str, str, str]]:
    """(file name, path, what to wait for) of each picture; the run is the newest successful backfill run."""
    runs = _graphql(url, '{ runsOrError(filter: {statuses: [SUCCESS]}, limit: 50) { ... on Runs { results { runId '
                         "jobName } } } }")["runsOrError"]["results"]  # fmt: skip
    run = next((r for r in runs if r["jobName"] == "__ephemeral_asset_job__"), runs[0] if runs else None)
    pages = [
        ("asset-graph.png", "/asset-groups", "text=core"),
        ("partitions.png", "/assets/fub/core/people?view=partitions", "text=Partitions"),
    ]
    if run is not None:
        pages.append(("run.png", f"/runs/{run['runId']}", "text=RUN_SUCCESS"))
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="The Dagster UI.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("error: playwright is not installed: .venv/bin/pip install -e '.[screenshots]'", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"error: no Chromium at {args.chromium}: apt-get install chromium, or pass --chromium", file=sys.stderr)
        return 2
    try:
        pages = _pages(args.url)
    except OSError as exc:
        print(f"error: no Dagster UI answers at {args.url} ({exc}): start `make dev` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, path, ready in pages:
            page.goto(f"{args.url}{path}", wait_until="networkidle", timeout=60_000)
            skip = page.get_by_role("button", name="Skip")  # the UI's first-visit "join the community" dialog
            if skip.count():
                skip.first.click()
            try:
                page.wait_for_selector(ready, timeout=30_000)
            except PlaywrightTimeout:
                print(f"warning: {path}: {ready!r} did not show within 30 s; the picture shows the page as it was")
            try:
                page.wait_for_selector("text=fetching statuses", state="detached", timeout=30_000)
            except PlaywrightTimeout:
                print(f"warning: {path}: asset statuses still loading after 30 s")
            page.wait_for_timeout(1500)  # let the graph settle its layout
            page.screenshot(path=str(args.out / name))
            print(f"{args.out / name}: {args.url}{path}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
