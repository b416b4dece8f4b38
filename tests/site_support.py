"""What the site tests share: the build's logs, mkdocs.yml, and driving the built pages in headless Chromium.

The build itself is the session-scoped ``site`` fixture in conftest.py, run once for every test_site_* module."""

from __future__ import annotations

import io

import yaml

from cifar_lessons.book.chapters import REPO_ROOT

# Screenshots the browser tests take (CI artifacts; build/ is ignored by git).
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
# What each build printed, by its folder: the `site` fixture (conftest.py) fills it.
BUILD_LOGS = {}


def mkdocs_config() -> dict:
    """mkdocs.yml, read without its !ENV-style tags."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((REPO_ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def site_pages(site) -> list[str]:
    return sorted(str(path.relative_to(site)) for path in site.rglob("*.html") if path.name != "404.html")


def open_page(driver, url: str, width: int = 1400, height: int = 1000, dark: bool = False):
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
    driver.get("about:blank")
    driver.get_log("browser")  # start each page with an empty console
    driver.get(url)
    driver.execute_script("localStorage.clear()")  # Material remembers the scheme: follow the emulated one
    driver.get(url)
    driver.execute_script("return document.fonts.ready")
    scheme = driver.execute_script("return document.body.getAttribute('data-md-color-scheme')")
    assert scheme == ("slate" if dark else "default"), f"{url}: colour scheme {scheme}"


def full_screenshot(driver, name: str, max_height: int = 9000):
    """Save the whole page (up to max_height pixels) under build/screenshots."""
    width = driver.execute_script("return window.innerWidth")
    height = min(max_height, driver.execute_script("return document.documentElement.scrollHeight"))
    original = driver.get_window_size()
    driver.set_window_size(original["width"], height)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(original["width"], original["height"])
    return width


def figure_pixels(driver, image):
    """The figure as displayed, as an RGB Pillow image."""
    from PIL import Image

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    driver.execute_script("return arguments[0].decode()", image)
    return Image.open(io.BytesIO(image.screenshot_as_png)).convert("RGB")
