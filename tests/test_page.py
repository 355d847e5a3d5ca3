"""The draw-a-digit page in a real browser: Debian's Chromium driven by Playwright.

The server is the real `mnist-cnn serve` on 127.0.0.1. Digits are drawn with the mouse,
stroke by stroke, along the ink of MNIST test digits. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import running_server
from PIL import Image
from playwright.sync_api import expect

ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
DRAWN = (0, 2, 3, 7, 8)  # five different digits
INK = 128  # pixels at least this bright are traced


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/predict" in r.url else None)
    page.predictions = requests
    page.goto(server)
    expect(page.locator("#model-line")).to_contain_text("fast")
    yield page
    context.close()


def trace(page, digit: np.ndarray) -> None:
    """Draw `digit` on the pad with the mouse: one stroke along each horizontal run of ink."""
    box = page.locator("#pad").bounding_box()
    cell = box["width"] / 28
    mouse = page.mouse
    runs = []
    for y, row in enumerate(digit >= INK):
        x = 0
        while x < 28:
            if row[x]:
                start = x
                while x < 28 and row[x]:
                    x += 1
                runs.append((y, start, x - 1))
            x += 1
    with page.expect_response("**/api/predict") as last:
        for y, x0, x1 in runs:
            top = box["y"] + (y + 0.5) * cell
            mouse.move(box["x"] + (x0 + 0.5) * cell, top)
            mouse.down()
            mouse.move(box["x"] + (x1 + 0.5) * cell, top, steps=max(2, x1 - x0))
            mouse.up()
    assert last.value.ok


def first_test_digit(mnist, label: int) -> np.ndarray:
    _, (x_test, y_test) = mnist
    return x_test[int(np.argmax(y_test == label))]


def test_empty_page_asks_for_a_digit_and_predicts_nothing(page):
    expect(page.locator("#status")).to_have_text("Draw a digit")
    assert page.locator("#digit").text_content() == "?"
    assert page.predictions == []


@pytest.mark.parametrize("label", DRAWN)
def test_drawing_a_digit_shows_it_and_clear_resets(page, mnist, label):
    trace(page, first_test_digit(mnist, label))
    expect(page.locator("#digit")).to_have_text(str(label))
    expect(page.locator("#status")).to_contain_text(f"a {label}")
    bars = page.locator("#bars li")
    assert bars.count() == 10
    assert "top" in (bars.nth(label).get_attribute("class") or "")
    seen = page.evaluate(
        "() => Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert seen > 20  # the 28x28 the model saw is shown, with ink in it
    page.screenshot(path=_artifact(f"page-drawn-{label}.png"), full_page=True)

    sent = len(page.predictions)
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#status")).to_have_text("Draw a digit")
    assert page.locator("#digit").text_content() == "?"
    assert len(page.predictions) == sent  # clearing asks nothing of the server


def test_uploading_a_png_shows_its_digit(page, mnist, tmp_path):
    path = tmp_path / "four.png"
    digit = first_test_digit(mnist, 4)
    Image.fromarray(255 - digit).resize((200, 200), Image.BICUBIC).save(path)
    with page.expect_response("**/api/predict"):
        page.get_by_label("Or upload a photo of a digit").set_input_files(path)
    expect(page.locator("#digit")).to_have_text("4")
    page.screenshot(path=_artifact("page-uploaded-4.png"), full_page=True)


def test_a_scribble_that_is_no_digit_is_not_called_one(browser, fast_run, mnist):
    """Answers below the server's --min-confidence are shown as unsure, not as fact."""
    with running_server(fast_run, "--min-confidence", "0.999999") as url:
        page = browser.new_page()
        page.goto(url)
        trace(page, first_test_digit(mnist, 5))
        expect(page.locator("#answer")).to_have_attribute("data-state", "unsure")
        expect(page.locator("#status")).to_contain_text("Not sure")
        page.close()


def test_phone_sized_screen(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 667}, has_touch=True)
    page = context.new_page()
    page.goto(server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll
    pad = page.locator("#pad").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= 375 and pad["width"] >= 250
    page.screenshot(path=_artifact("page-phone.png"), full_page=True)
    context.close()


def test_keyboard_labels_and_contrast(page):
    # Every control is reachable with Tab and has a name.
    focused = []
    for _ in range(3):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
    assert focused[:2] == ["clear", "upload"]
    assert page.get_by_label("Or upload a photo of a digit").count() == 1
    assert page.locator("#pad").get_attribute("aria-label")
    assert page.locator("#answer").get_attribute("aria-live") == "polite"
    # Escape clears, for keyboard users.
    page.keyboard.press("Escape")
    expect(page.locator("#status")).to_have_text("Draw a digit")
    # Text contrast at least 4.5:1 (WCAG AA) for every element that holds text.
    worst = page.evaluate(CONTRAST_JS)
    assert worst["ratio"] >= 4.5, worst


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


CONTRAST_JS = """() => {
  const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  let worst = { ratio: 99, text: "" };
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < worst.ratio) worst = { ratio, text: el.textContent.trim().slice(0, 40) };
  }
  return worst;
}"""


def test_png_of_the_page_matches_the_api(page, server, mnist):
    """The page and the API give the same answer for the same drawing (one imaging path)."""
    trace(page, first_test_digit(mnist, 6))
    expect(page.locator("#answer")).not_to_have_attribute("data-state", "empty")
    png = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    data = base64.b64decode(png.split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (280, 280)
    api = httpx.post(f"{server}/api/predict", files={"file": ("pad.png", data, "image/png")})
    shown = page.locator("#digit").text_content()
    assert str(api.json()["digit"]) == shown
