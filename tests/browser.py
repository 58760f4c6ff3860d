"""The real browser the back-office tests click through: Debian's Chromium driven by Playwright.

`make test` installs Chromium with apt-get when run as root; without it the browser tests skip
and say how. `logged_in_page` opens a page in light or dark mode (`color_scheme`), so each screen
can be looked at in both; screenshots go to `ARTIFACTS` (test-artifacts/, kept by CI).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
COLOR_SCHEMES = ("light", "dark")

needs_chromium = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium: `apt-get install chromium` "
        "(`make test` installs it when run as root)",
    ),
]


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package: `make venv` installs it"
    )
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield chromium
        # ORM calls made while Playwright's loop runs open their own connection: close it, or
        # the test database cannot be dropped at the end of the run.
        connections.close_all()
        chromium.close()


def logged_in_page(
    browser, live_server, username: str, *, color_scheme: str = "light", width: int = 1400
):
    """A page logged in as `username` (password `pw-<username>`, as tests/conftest.py makes)."""
    page = browser.new_page(viewport={"width": width, "height": 1000}, color_scheme=color_scheme)
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


def screenshot(page, name: str) -> Path:
    """Save the whole page as test-artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


_PIXEL_OF_PNG = """async (data) => {
  const image = new Image();
  image.src = data;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  return Array.from(context.getImageData(0, 0, 1, 1).data.slice(0, 3));
}"""


def drawn_rgb(page, x: float, y: float) -> tuple[int, int, int]:
    """The colour drawn at (x, y) of the viewport, read from a screenshot: what staff see there,
    whatever the element under that point says its colour is."""
    png = page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})
    data = "data:image/png;base64," + base64.b64encode(png).decode()
    return tuple(page.evaluate(_PIXEL_OF_PNG, data))
