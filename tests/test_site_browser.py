"""The built site in a real browser (headless Chromium, through Selenium for all but the first test): every page
loads cleanly, figures, captions, printed outputs, tables and formulas are laid out at phone and laptop widths in
both colour schemes, the site reads from disk, and search finds a chapter. All are in the browser tier."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading

import pytest
from book_mathml import notebook_formulas
from site_support import SCREENSHOTS, figure_pixels, full_screenshot, open_page, site_pages

from cifar_lessons.book.chapters import CHAPTERS, PAGES, get_chapter


@pytest.fixture(scope="module")
def served(site):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# CI sets this (.ci/run): there a missing Chromium fails the browser tests instead of skipping them.
REQUIRE_BROWSER = os.environ.get("CIFAR_LESSONS_REQUIRE_BROWSER") == "1"


def no_browser():
    """Fail when CI requires the browser tests, otherwise skip with the reason."""
    reason = "Chromium is not installed (apt-get install chromium chromium-driver); .ci/run installs it"
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (CIFAR_LESSONS_REQUIRE_BROWSER=1: the browser tests must run)")
    pytest.skip(reason)


def render(url: str) -> str:
    """The DOM after headless Chromium has loaded and run the page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        no_browser()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--virtual-time-budget=5000", "--dump-dom"]
    result = subprocess.run([chromium, *flags, url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.browser
def test_browser_renders_home_and_a_chapter_with_a_plot(served):
    home = render(served + "/")
    assert "cifar-lessons" in home and CHAPTERS[0].title in home
    chapter = CHAPTERS[0]
    dom = render(f"{served}/chapters/{chapter.notebook.stem}.html")
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in dom
    assert re.search(r'<img[^>]+src="figures/[^"]+[.]png"', dom), "no rendered plot on the chapter page"


# ---------- In a real browser (headless Chromium through Selenium) ----------

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:home|root|work|tmp|Users|mnt|opt|srv|var|private)/[\w.-]+")
ANSI = re.compile(r"\x1b\[|\[(?:\d+;)*\d+m")
SCROLLERS = ("pre, code, table, .highlight, .jp-OutputArea-output, .md-typeset__scrollwrap, details.nb-output, "
             ".math-display")
OVERFLOW_JS = f"""
const width = document.documentElement.clientWidth;
const offenders = [];
for (const el of document.querySelectorAll('.md-content *')) {{
  if (el.closest('{SCROLLERS}')) continue;
  const box = el.getBoundingClientRect();
  if (box.width > 0 && box.right > width + 1)
    offenders.push(el.tagName + '.' + el.className + ' ' + Math.round(box.right));
}}
// Printed prose wraps instead (extra.css: pre.nb-prose): it never scrolls sideways.
const prose = [...document.querySelectorAll('pre.nb-prose')].filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.slice(0, 60));
return [document.documentElement.scrollWidth, width, offenders.slice(0, 5), prose.slice(0, 3)];
"""


@pytest.fixture(scope="module")
def browser():
    if REQUIRE_BROWSER:
        import selenium.webdriver as webdriver  # a dev dependency: CI fails without it
    else:
        webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (a dev dependency)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        no_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.mark.browser
def test_every_page_loads_cleanly(site, served, browser):
    """No console errors; no absolute machine paths or raw ANSI codes in what the reader sees."""
    problems = []
    for page in site_pages(site):
        open_page(browser, f"{served}/{page}")
        errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        if errors:
            problems.append(f"{page}: console errors {errors[:3]}")
        text = browser.execute_script("return document.body.innerText")
        if match := ABSOLUTE_PATH.search(text):
            problems.append(f"{page}: absolute path {match.group(0)!r}")
        if match := ANSI.search(text):
            problems.append(f"{page}: raw ANSI code {match.group(0)!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_chapter_figures_are_drawn_and_legible_in_both_schemes(site, served, browser, chapter):
    """Every figure has content (not one colour), fits the column, is a HiDPI PNG, and is a light card in both
    schemes."""
    from selenium.webdriver.common.by import By

    url = f"{served}/chapters/{chapter.notebook.stem}.html"
    problems = []
    for dark in (False, True):
        open_page(browser, url, dark=dark)
        full_screenshot(browser, f"{chapter.id}-1400-{'dark' if dark else 'light'}")
        column = browser.execute_script("return document.querySelector('.md-content').getBoundingClientRect().width")
        images = browser.find_elements(By.CSS_SELECTOR, ".jp-RenderedImage img")
        for number, image in enumerate(images, 1):
            pixels = figure_pixels(browser, image)
            natural = browser.execute_script("return arguments[0].naturalWidth", image)
            if image.size["width"] > column + 1:
                problems.append(f"figure {number} is {image.size['width']} px wide in a {column:.0f} px column")
            elif not dark and natural > 2.5 * image.size["width"]:  # drawn too wide: its text shrinks with it
                problems.append(f"figure {number} is drawn {natural} px wide and shown at {image.size['width']} px; "
                                "draw it at the column width (cifar_lessons.style.COLUMN_WIDTH)")
            elif not dark and natural < 1.5 * image.size["width"]:  # a 1x PNG: blurred on HiDPI and when zoomed
                problems.append(f"figure {number} is drawn at {natural} px for {image.size['width']} px on the page: "
                                "not the retina PNG that cifar_lessons.style.use() asks for")
            lowest, highest = zip(*pixels.getextrema())
            if max(highest[c] - lowest[c] for c in range(3)) < 8:
                problems.append(f"figure {number} is blank (one colour){' in dark mode' if dark else ''}")
            # Ink on paper in both schemes: the figure's edge is its light paper, not the page showing through
            # (in the dark scheme a transparent figure's grey ink would sit on the dark page at under 4.5:1).
            grey = pixels.convert("L")
            frame = [grey.getpixel((x, y)) for x in range(grey.width) for y in (1, grey.height - 2)]
            frame += [grey.getpixel((x, y)) for y in range(grey.height) for x in (1, grey.width - 2)]
            light = sum(value >= 200 for value in frame) / len(frame)
            if light < 0.5:
                problems.append(f"figure {number}: its edge is only {light:.0%} paper{' in dark mode' if dark else ''}")
    assert not problems, f"chapter {chapter.id}: " + "; ".join(problems)


@pytest.mark.browser
def test_phone_width_has_no_horizontal_overflow(site, served, browser):
    """At 390 px only code blocks, outputs and tables may scroll sideways, inside themselves; printed prose wraps."""
    problems = []
    for page in site_pages(site):
        open_page(browser, f"{served}/{page}", width=390, height=844)
        scroll_width, width, offenders, prose = browser.execute_script(OVERFLOW_JS)
        if scroll_width > width + 1 or offenders:
            problems.append(f"{page}: page {scroll_width} px wide in {width} px; {offenders}")
        if prose:
            problems.append(f"{page}: printed prose scrolls sideways: {prose}")
        if page in ("index.html", "chapters/01_data_and_baseline.html", "chapters/03_deeper_cnn.html"):
            full_screenshot(browser, "390-" + page.replace("/", "-").removesuffix(".html"), max_height=6000)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_figure_labels_read_on_a_phone(site, served, browser):
    """On a 412-pixel phone every figure (the notebooks' and the results page's chart) is shrunk to the column; drawn
    at most COLUMN_WIDTH wide with text of at least MIN_FONT_SIZE, its smallest label still shows at least
    MIN_TEXT_PX tall (issue 25 measured 7.4-7.9 px)."""
    from cifar_lessons import style

    problems, seen = [], 0
    for page in site_pages(site):
        if not page.startswith("chapters/") and page != "results.html":
            continue
        open_page(browser, f"{served}/{page}", width=412, height=915)
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('.jp-RenderedImage img, img.results-chart')]"
            ".map(image => [image.getBoundingClientRect().width, image.naturalWidth])")
        for number, (shown, natural) in enumerate(sizes, 1):
            smallest = style.MIN_FONT_SIZE * style.DPI / 72 * shown / (natural / 2)  # the PNGs are drawn at 2x
            if smallest < style.MIN_TEXT_PX:
                problems.append(f"{page} figure {number}: drawn {natural // 2} px wide, shown at {shown:.0f} px: "
                                f"its smallest text is {smallest:.1f} px")
        seen += len(sizes)
    assert seen >= 30, f"only {seen} figures found"
    assert not problems, "\n".join(problems)


PRINTED_JS = """
return [...document.querySelectorAll('.jp-RenderedText pre')].filter(pre => pre.getClientRects().length).map(pre => {
  const range = document.createRange();
  range.selectNodeContents(pre);
  const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
  return {element: pre, prose: pre.classList.contains('nb-prose'), overflow: pre.scrollWidth - pre.clientWidth,
          whiteSpace: getComputedStyle(pre).whiteSpace, lines: lines.length,
          longest: Math.max(...lines.map(line => line.length)),
          rows: new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size};
});
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [412, 1280])
def test_printed_prose_wraps_and_printed_tables_scroll(site, served, browser, width):
    """Chapter 7 on a 412-pixel phone and a 1280-pixel laptop: its 602-character sentence (marked nb-prose) wraps
    inside the column, with no sideways scroll; on the phone its aligned epoch table keeps a row per printed line
    and scrolls inside its block, as every printed table does there."""
    chapter = get_chapter("07")
    open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=900)
    printed = browser.execute_script(PRINTED_JS)
    prose = [block for block in printed if block["prose"]]
    assert prose, "no printed output on chapter 7's page is marked as prose"
    problems = [f"prose scrolls {block['overflow']} px sideways ({block['whiteSpace']}): {block['element'].text[:60]!r}"
                for block in prose if block["overflow"] > 1 or block["whiteSpace"] != "pre-wrap"]
    longest = max(prose, key=lambda block: block["longest"])
    if longest["longest"] < 500 or longest["rows"] < 2:
        problems.append(f"the longest prose line ({longest['longest']} characters) shows on {longest['rows']} row(s)")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", longest["element"])
    longest["element"].screenshot(str(SCREENSHOTS / f"{chapter.id}-prose-{width}.png"))
    if width < 720:  # below 45em: only prose wraps
        tables = [block for block in printed if not block["prose"] and block["longest"] > 60]
        if not any(block["overflow"] > 1 for block in tables):
            problems.append(f"no printed table scrolls sideways: {[block['element'].text[:40] for block in tables]}")
        problems += [f"a printed table wraps ({block['rows']} rows for {block['lines']} lines, {block['whiteSpace']}): "
                     f"{block['element'].text[:60]!r}"
                     for block in tables if block["whiteSpace"] != "pre" or block["rows"] > block["lines"]]
        if tables:
            widest = max(tables, key=lambda block: block["overflow"])
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", widest["element"])
            widest["element"].screenshot(str(SCREENSHOTS / f"{chapter.id}-table-{width}.png"))
    assert not problems, f"chapter 7 at {width} px:\n" + "\n".join(problems)


CAPTIONS_JS = """
const luminance = ([r, g, b]) => {
  const linear = [r, g, b].map(v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
};
const rgba = colour => colour.match(/[\\d.]+/g).map(Number);
const background = el => {  // the first opaque background behind the element
  for (; el; el = el.parentElement) {
    const [r, g, b, a = 1] = rgba(getComputedStyle(el).backgroundColor);
    if (a > 0.99) return [r, g, b];
  }
  return [255, 255, 255];
};
const width = document.documentElement.clientWidth;
const text = parseFloat(getComputedStyle(document.querySelector('.md-typeset p')).fontSize);
return [...document.querySelectorAll('.jp-RenderedImage img')].map(img => {
  const caption = img.closest('figure.nb-figure')?.querySelector(':scope > figcaption');
  if (!caption) return {src: img.getAttribute('src'), caption: null};
  const box = caption.getBoundingClientRect(), image = img.getBoundingClientRect(), style = getComputedStyle(caption);
  const [r, g, b, a = 1] = rgba(style.color), behind = background(caption);
  const ink = [r, g, b].map((v, i) => a * v + (1 - a) * behind[i]);
  const [light, dark] = [luminance(ink), luminance(behind)].sort((x, y) => y - x);
  return {src: img.getAttribute('src'), caption: caption.innerText.trim(), left: box.left, right: box.right,
          width: box.width, height: box.height, below: box.top - image.bottom, viewport: width,
          clipped: caption.scrollWidth > caption.clientWidth + 1, visible: style.visibility === 'visible'
            && style.display !== 'none' && parseFloat(style.opacity) > 0.9,
          size: parseFloat(style.fontSize), text, contrast: (light + 0.05) / (dark + 0.05)};
});
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [412, 1280])
def test_figure_captions_are_visible(site, served, browser, width):
    """Chapter 7 on a 412-pixel phone and a 1280-pixel laptop, in both schemes: each figure's numbered caption shows
    just below it, inside the screen, smaller than the text and at 4.5:1 contrast or more; a click still zooms."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chapter = get_chapter("07")
    problems = []
    for dark in (False, True):
        scheme = "dark" if dark else "light"
        open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=900, dark=dark)
        found = browser.execute_script(CAPTIONS_JS)
        if len(found) < 2:
            problems.append(f"{scheme}: {len(found)} figure(s) on chapter 7's page, expected its two")
        for number, figure in enumerate(found, 1):
            where = f"{scheme}, figure {number} ({figure['src']})"
            if figure["caption"] is None:
                problems.append(f"{where}: no caption")
                continue
            if not re.match(rf"Figure 7\.{number}: \S", figure["caption"]):
                problems.append(f"{where}: captioned {figure['caption'][:40]!r}")
            if not figure["visible"] or figure["width"] < 50 or figure["height"] < 8:
                problems.append(f"{where}: the caption is not shown ({figure['width']:.0f}x{figure['height']:.0f} px)")
            if figure["left"] < 0 or figure["right"] > figure["viewport"] + 1 or figure["clipped"]:
                problems.append(f"{where}: the caption runs off the screen ({figure['left']:.0f}-{figure['right']:.0f} "
                                f"px of {figure['viewport']})")
            if not 0 <= figure["below"] < 30:
                problems.append(f"{where}: the caption is {figure['below']:.0f} px below its figure")
            if not 11 <= figure["size"] < figure["text"]:
                problems.append(f"{where}: caption at {figure['size']} px, text at {figure['text']} px")
            if figure["contrast"] < 4.5:
                problems.append(f"{where}: caption contrast {figure['contrast']:.1f}:1")
        captioned = browser.find_elements(By.CSS_SELECTOR, "figure.nb-figure")
        if captioned:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", captioned[0])
            captioned[0].screenshot(str(SCREENSHOTS / f"{chapter.id}-caption-{width}-{scheme}.png"))
    # Click-to-zoom still opens the figure in the lightbox.
    link = browser.find_element(By.CSS_SELECTOR, ".jp-RenderedImage a.glightbox")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    zoomed = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".glightbox-container .gslide-image img"))
    if not zoomed[0].get_attribute("src").endswith(link.get_attribute("href").rsplit("/", 1)[-1]):
        problems.append(f"the lightbox shows {zoomed[0].get_attribute('src')}, not {link.get_attribute('href')}")
    assert not problems, f"chapter 7 at {width} px:\n" + "\n".join(problems)


@pytest.mark.browser
def test_results_table_fits_the_column_at_1400_px(site, served, browser):
    open_page(browser, f"{served}/results.html")
    full_screenshot(browser, "results-1400-light")
    fits = browser.execute_script("const column = document.querySelector('.md-content__inner').clientWidth;"
                                  "return [...document.querySelectorAll('.md-typeset table')]"
                                  ".map(t => [t.scrollWidth, column])")
    assert fits, "no table on the results page"
    for table_width, column in fits:
        assert table_width <= column + 1, f"a results table is {table_width} px wide in a {column} px column"


@pytest.mark.browser
def test_site_reads_from_disk(site, browser):
    """Opened as file://, links lead to pages (not folder listings) and pages load without errors.

    Search from file:// relies on Material's iframe-worker shim, which stays at "Initializing search" in
    headless Chromium here: the README sends readers who want search to a local server.
    """
    from selenium.webdriver.common.by import By

    chapter = CHAPTERS[1]
    open_page(browser, (site / "index.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, f'.md-content a[href$="{chapter.notebook.stem}.html"]').click()
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, ".jp-RenderedImage img"), "no figure from file://"
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


@pytest.mark.browser
def test_search_finds_a_chapter(served, browser):
    """Served, search runs in its worker and finds a chapter by its title."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chapter = CHAPTERS[4]
    open_page(browser, f"{served}/index.html")
    browser.execute_script("document.querySelector('[data-md-toggle=search]').checked = true;"
                           "const input = document.querySelector('.md-search__input');"
                           "input.value = arguments[0]; input.dispatchEvent(new Event('input', {bubbles: true}));"
                           "input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true}));", chapter.title)
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    results = browser.execute_script("return document.querySelector('.md-search-result__list').textContent")
    assert chapter.title in results and "Copied!" not in results
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


LAYOUT_JS = """
const box = el => el.getBoundingClientRect();
const column = box(document.querySelector('.md-content__inner')).width;
const size = sel => {
  const el = document.querySelector(sel);
  return el ? parseFloat(getComputedStyle(el).fontSize) : null;
};
const overlaps = [...document.querySelectorAll('.jp-InputArea-editor .highlight pre')].map(pre => {
  const button = pre.querySelector('.md-code__nav, .md-clipboard'), code = pre.querySelector(':scope > code');
  return button && code && box(button).left < box(code).right - 1 ? code.textContent.split('\\n')[0] : null;
}).filter(Boolean);
const gaps = [];
for (const area of document.querySelectorAll('.jp-OutputArea')) {
  const children = [...area.children].filter(child => box(child).height > 0);
  for (let i = 1; i < children.length; i++) {
    const gap = box(children[i]).top - box(children[i - 1]).bottom;
    if (Math.abs(gap) > 1) gaps.push(Math.round(gap));
  }
}
const rich = [...document.querySelectorAll('.jp-RenderedHTML pre')].filter(pre => pre.textContent.includes('\u2503'))
  .map(pre => getComputedStyle(pre).lineHeight === 'normal' ? 99  // 'normal' with box drawing: ~2.5 em
              : parseFloat(getComputedStyle(pre).lineHeight) / parseFloat(getComputedStyle(pre).fontSize));
const chips = [...document.querySelectorAll('.celltoolbar, .cell-tag')].filter(el => box(el).height > 0).length;
return {column, notebook: box(document.querySelector('.jp-Notebook')).width,
        header: box(document.querySelector('.chapter-header')).width,
        input: size('.jp-InputArea-editor .highlight pre > code'), output: size('.jp-RenderedText pre'),
        overlaps, gaps, rich, chips};
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 390])
def test_notebook_layout(site, served, browser, width):
    """Cells use the whole column (not 32 px less beside the edit button), code and outputs share one readable
    size, the copy button covers no code, one cell's outputs read as one block, Rich tables are not double-spaced,
    and cell-tag chips are hidden."""
    problems = []
    for chapter in (CHAPTERS[0], get_chapter("11")):
        open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=1000)
        found = browser.execute_script(LAYOUT_JS)
        where = f"chapter {chapter.id} at {width} px"
        if abs(found["notebook"] - found["column"]) > 1 or abs(found["header"] - found["column"]) > 1:
            problems.append(f"{where}: notebook {found['notebook']:.0f} px, header {found['header']:.0f} px "
                            f"in a {found['column']:.0f} px column")
        if found["input"] != found["output"] or found["input"] < 12:
            problems.append(f"{where}: code at {found['input']} px, outputs at {found['output']} px")
        if found["overlaps"]:
            problems.append(f"{where}: the copy button covers code: {found['overlaps'][:2]}")
        if found["gaps"]:
            problems.append(f"{where}: gaps between the outputs of one cell: {found['gaps'][:5]} px")
        if any(ratio > 1.4 for ratio in found["rich"]):
            problems.append(f"{where}: Rich table line height {max(found['rich']):.2f} em")
        if found["chips"]:
            problems.append(f"{where}: {found['chips']} cell-tag chips shown")
        if chapter.id == "01" and not found["rich"]:
            problems.append(f"{where}: no model summary found (the check checked nothing)")
    assert not problems, "\n".join(problems)


WRAPPED_NUMBERS_JS = """
const wrapped = [];
let cells = 0;
for (const cell of document.querySelectorAll('.md-typeset__table td, .md-typeset__table th')) {
  if (getComputedStyle(cell).textAlign !== 'right' || !cell.textContent.trim()) continue;
  cells++;
  const range = document.createRange();
  range.selectNodeContents(cell);
  const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
  if (tops.size > 1) wrapped.push(cell.textContent.trim());
}
return [cells, wrapped];
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 390])
def test_table_numbers_stay_on_one_line(site, served, browser, width):
    """Right-aligned columns (accuracies, minutes) never break inside a number ("63.0 ±" / "0.1%")."""
    problems, checked = [], 0
    for page in ("index.html", "results.html"):
        open_page(browser, f"{served}/{page}", width=width, height=1000)
        cells, wrapped = browser.execute_script(WRAPPED_NUMBERS_JS)
        checked += cells
        if wrapped:
            problems.append(f"{page} at {width} px: {wrapped[:5]}")
    assert checked, "no right-aligned table cell found"
    assert not problems, "\n".join(problems)


MATH_JS = """
const text = el => getComputedStyle(el.closest('p, li, td') || el.parentElement).color;
return [...document.querySelectorAll('math')].map(math => {
  const box = math.getBoundingClientRect();
  return [math.namespaceURI, getComputedStyle(math).display, Math.round(box.width), Math.round(box.height),
          getComputedStyle(math).color === text(math), math.textContent.trim().slice(0, 30)];
});
"""


@pytest.mark.browser
def test_formulas_are_drawn_as_mathml(site, served, browser):
    """Chromium lays the formulas out as MathML (block or inline), in the text colour of both schemes."""
    from selenium.webdriver.common.by import By

    pages = [c for c in PAGES if any(notebook_formulas(c.notebook).values())]
    assert pages, "no chapter has a formula"
    problems = []
    for chapter in pages:
        for dark in (False, True):
            open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", dark=dark)
            drawn = browser.execute_script(MATH_JS)
            if not drawn:
                problems.append(f"chapter {chapter.id}: no MathML on the page, though the notebook has formulas")
            for namespace, display, width, height, same_colour, text in drawn:
                if namespace != "http://www.w3.org/1998/Math/MathML" or display not in ("block math", "math"):
                    problems.append(f"chapter {chapter.id}: {text!r} is not laid out as MathML ({display})")
                elif width < 4 or height < 8:
                    problems.append(f"chapter {chapter.id}: {text!r} is drawn {width}x{height} px")
                elif not same_colour:
                    problems.append(f"chapter {chapter.id}: {text!r} not in the text colour{' (dark)' * dark}")
            display_math = browser.find_elements(By.CSS_SELECTOR, ".math-display")
            if display_math:
                browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", display_math[0])
                display_math[0].screenshot(str(SCREENSHOTS / f"{chapter.id}-formula-{'dark' if dark else 'light'}.png"))
    assert not problems, "\n".join(problems[:20])
