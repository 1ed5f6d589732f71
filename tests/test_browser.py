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


def test_a_mistake_marks_the_last_good_result_out_of_date(page):
    page.fill("#spec", "input 8x8x3 | conv 3x3x4")
    page.wait_for_function("document.querySelector('#table').innerText.includes('6x6x4')")
    assert page.evaluate("!document.querySelector('#results').classList.contains('stale')")
    page.fill("#spec", "input 8x8x3\nconv 3x3x4 | conv 9x9x4")
    page.wait_for_selector("#results.stale")
    assert page.inner_text("#stale") == "out of date: the spec has a mistake on line 2"
    assert "6x6x4" in page.inner_text("#table")  # still shown, marked
    page.fill("#spec", "input 8x8x3 | conv 3x3x5")
    page.wait_for_function("document.querySelector('#table').innerText.includes('6x6x5')")
    assert page.evaluate("!document.querySelector('#results').classList.contains('stale')")
    assert page.is_hidden("#stale")


def test_editing_a_zoo_network_leaves_the_menu(page):
    page.select_option("#zoo", "lenet5")
    page.wait_for_function("document.querySelector('#table').innerText.includes('61,706')")
    page.type("#spec", " ")
    assert page.input_value("#zoo") == ""


def test_a_row_and_its_line_mark_each_other(page):
    page.fill("#spec", "input 32x32x3\nconv 3x3x8\nmaxpool 2\nconv 3x3x16")
    page.wait_for_function("document.querySelector('#table').innerText.includes('13x13x16')")
    page.hover("#table tbody tr[data-line='3']")  # maxpool's row
    page.wait_for_selector("#shown .hl")
    assert page.inner_text("#shown .hl") == "maxpool 2"
    page.click("#spec")
    page.evaluate("() => { const t = document.querySelector('#spec'); t.focus();"
                  " t.setSelectionRange(40, 40); t.dispatchEvent(new Event('keyup')); }")
    assert page.inner_text("#table tr.hl").split()[:3] == ["3", "conv_2", "conv"]


def test_the_diagram_fits_zooms_and_draws_the_u_net_as_a_u(page):
    page.select_option("#zoo", "unet")
    page.wait_for_function("document.querySelector('#table').innerText.includes('31,030,658')")
    page.click("nav button[data-view=diagram]")
    page.click("#fit")
    width = page.evaluate("document.querySelector('#canvas').clientWidth")
    drawn = page.evaluate("document.querySelector('#canvas svg').getBoundingClientRect().width")
    assert drawn <= width and drawn > 0.9 * width  # fitted to the view
    fitted = page.inner_text("#zoom")
    page.click("#in")
    assert page.inner_text("#zoom") != fitted
    page.click("#one")
    assert page.inner_text("#zoom") == "100%"
    assert "name+" in page.inner_text("#legend")


def test_a_specs_knobs_are_sliders(page):
    """'param width = 16' and a fraction 'param mult = 1.0': sliders that rewrite the line."""
    page.fill("#spec", "param width = 16\nparam mult = 1.0  # a multiplier\ninput 32x32x3\n"
                       "conv 3x3x$width same\nconv 1x1x(ceil($width * $mult))")
    page.wait_for_function("document.querySelector('#table').innerText.includes('32x32x16')")
    knobs = page.inner_text("#knobs")
    assert "width" in knobs and "mult" in knobs
    page.evaluate("() => { const s = document.getElementById('k-width'); s.value = 8;"
                  " s.dispatchEvent(new Event('input', { bubbles: true })); }")
    assert "param width = 8\n" in page.input_value("#spec")
    page.evaluate("() => { const s = document.getElementById('k-mult'); s.value = 1.5;"
                  " s.dispatchEvent(new Event('input', { bubbles: true })); }")
    assert "param mult = 1.5  # a multiplier" in page.input_value("#spec")
    # ceil(8 x 1.5) = 12 filters: 1 x 1 x 8 x 12 + 12 = 108 parameters
    page.wait_for_function("document.querySelector('#table').innerText.includes('32x32x12')")
    assert "108" in page.inner_text("#table")


def test_a_defs_numbers_are_sliders(page):
    page.fill("#spec", "def block(c=16, k=3) { conv ${k}x${k}x$c same relu }\n"
                       "input 32x32x3\nblock()\nblock(c=8)")
    page.wait_for_function("document.querySelector('#table').innerText.includes('32x32x8')")
    knobs = page.inner_text("#knobs")
    assert "block.c" in knobs and "block.k" in knobs
    page.evaluate("() => { const s = document.getElementById('k-block.k'); s.value = 5;"
                  " s.dispatchEvent(new Event('input', { bubbles: true })); }")
    assert "def block(c=16, k=5)" in page.input_value("#spec")
    # conv 5x5 on 3 channels to 16: 5 x 5 x 3 x 16 + 16 = 1,216 parameters
    page.wait_for_function("document.querySelector('#table').innerText.includes('1,216')")
