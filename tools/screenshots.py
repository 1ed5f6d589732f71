"""Screenshots for the README, taken in Debian's chromium with Playwright: the playground
with a spec typed in (a table row hovered), with a mistake (the stale result marked), the
U-Net's diagram fitted and zoomed; and the diagrams of U-Net, EfficientNet-B0 and the FPN
as a browser shows their SVG. Run: python tools/screenshots.py (needs chromium and
playwright)."""

import shutil
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

import cnncalc
from cnncalc.render.draw import layout, svg
from cnncalc.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def main():
    DOCS.mkdir(exist_ok=True)
    server = uvicorn.Server(uvicorn.Config(create_app(), port=8765, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 760})
        page.goto("http://127.0.0.1:8765/")
        page.fill("#spec", (ROOT / "specs" / "lenet5.cnn").read_text())
        page.wait_for_function("document.querySelector('#table').innerText.includes('61,706')")
        page.hover("#table tbody tr:nth-child(4)")  # a row and its line in the editor
        page.screenshot(path=str(DOCS / "playground.png"))
        # a mistake: the last good result stays, greyed and marked out of date
        page.fill("#spec", (ROOT / "specs" / "lenet5.cnn").read_text().replace("conv", "convv", 1))
        page.wait_for_selector("#results.stale")
        page.screenshot(path=str(DOCS / "playground_stale.png"))
        # the U-Net's diagram, as a U, zoomed in on its bottleneck
        page.select_option("#zoo", "unet")
        page.wait_for_function("document.querySelector('#table').innerText.includes('31,030,658')")
        page.click("nav button[data-view=diagram]")
        page.click("#fit")
        page.screenshot(path=str(DOCS / "playground_unet.png"))
        for _ in range(5):
            page.click("#in")
        # the bottleneck: the middle of the U's width, its lowest row
        page.evaluate("() => { const c = document.querySelector('#canvas');"
                      " c.scrollLeft = (c.scrollWidth - c.clientWidth) * 0.42;"
                      " c.scrollTop = (c.scrollHeight - c.clientHeight) * 0.85; }")
        page.screenshot(path=str(DOCS / "playground_zoom.png"))
        for name in ("unet", "efficientnet_b0", "fpn"):
            s = cnncalc.summarize(ROOT / "specs" / f"{name}.cnn")
            page.set_content(f"<body style='margin:0;background:#fff'>{svg(layout(s))}</body>")
            page.locator("svg").screenshot(path=str(DOCS / f"{name}.png"))
        browser.close()
    server.should_exit = True
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in sorted(DOCS.glob("*.png"))))


if __name__ == "__main__":
    main()
