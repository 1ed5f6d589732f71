"""The playground in a real browser (issue 15): Debian's chromium driven by Playwright.
Skipped, with the reason, where either is missing (CI's plain machine); 'make test-browser'
installs both and runs this file."""

import shutil
import socket
import threading
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine "
                                "(apt install chromium)")


@pytest.fixture(scope="module")
def url():
    import uvicorn
    from cnncalc.web.app import create_app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def page(url):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        yield page
        browser.close()


def test_shapes_follow_the_typing(page):
    page.fill("#spec", "input 443x592x3 | conv 5x5x6 valid stride 1 | maxpool 2")
    page.wait_for_function("document.querySelector('#table').innerText.includes('439x588x6')")
    assert "219x294x6" in page.inner_text("#status")
    page.fill("#spec", "input 443x592x3 | conv 5x5x6 valid stride 2")
    page.wait_for_function("document.querySelector('#table').innerText.includes('220x294x6')")


def test_a_mistake_is_marked_on_its_line(page):
    page.fill("#spec", "input 8x8x3\nconvv 3x3x4")
    page.wait_for_selector("#status.error")
    assert "did you mean 'conv'" in page.inner_text("#status")
    assert page.inner_text("#shown .bad") == "convv 3x3x4"


def test_the_link_holds_the_spec(page, url):
    text = "input 32x32x3 | conv 3x3x8 same relu | maxpool 2"
    before = page.evaluate("location.hash")
    page.fill("#spec", text)
    page.wait_for_function("h => location.hash.startsWith('#z=') && location.hash !== h",
                           arg=before)
    link = page.url
    page.goto(url)  # a fresh page, then the shared link
    page.goto(link)
    page.wait_for_function("document.querySelector('#table').innerText.includes('16x16x8')")
    assert page.input_value("#spec") == text


def test_the_zoo_menu_loads_a_network(page):
    page.select_option("#zoo", "resnet50")
    page.wait_for_function("document.querySelector('#status').innerText.includes('25,610,152')")
