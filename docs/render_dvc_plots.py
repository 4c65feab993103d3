"""Render a `dvc plots show` / `dvc plots diff` page in headless Chromium and screenshot it.

DVC's page loads Vega, Vega-Lite and vega-embed from cdn.jsdelivr.net; offline, point
``--vega`` at a folder with the three files (``npm pack vega@5.20.2 vega-lite@5.2.0
vega-embed@6.18.2`` and unpack: ``vega.min.js``, ``vega-lite.min.js``, ``vega-embed.min.js``
from each package's ``build/``). Prints, per interactive plot, the lines drawn (stroke
colour = revision, dash = file: one per curve). Made docs/images/dvc_plots.png:

    dvc plots diff main <experiment> -o dvc_plots
    python docs/render_dvc_plots.py dvc_plots/index.html --vega vega-files \
        --out docs/images/dvc_plots.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

SVG = (
    ";(function(){var o=window.vegaEmbed;window.vegaEmbed=function(e,s,opt)"
    "{return o(e,s,Object.assign({renderer:'svg'},opt||{}))};})();"
)
LINES = """() => [...document.querySelectorAll('div[id]')].filter(d => d.querySelector('svg'))
  .map(d => ({id: d.id, lines: [...d.querySelectorAll('g.mark-line path')]
  .map(p => [p.getAttribute('stroke'), p.getAttribute('stroke-dasharray')])}))"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--vega", type=Path, required=True, help="folder with the three .min.js")
    ap.add_argument("--out", type=Path, default=Path("dvc_plots.png"))
    args = ap.parse_args()
    files = {
        "vega@": "vega.min.js",
        "vega-lite@": "vega-lite.min.js",
        "vega-embed@": "vega-embed.min.js",
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1300, "height": 900})

        def route(r):
            name = r.request.url.split("/npm/")[-1]
            for prefix, file in files.items():
                if name.startswith(prefix):
                    body = (args.vega / file).read_text()
                    body += SVG if prefix == "vega-embed@" else ""  # SVG: lines can be counted
                    return r.fulfill(body=body, content_type="application/javascript")
            return r.abort()

        page.route("https://cdn.jsdelivr.net/**", route)
        page.goto(args.html.resolve().as_uri())
        page.wait_for_selector("svg .mark-line path", timeout=60_000)
        page.wait_for_timeout(1000)
        for plot in page.evaluate(LINES):
            print(plot["id"], len(plot["lines"]), "lines", plot["lines"])
        page.screenshot(path=str(args.out))
        browser.close()


if __name__ == "__main__":
    main()
