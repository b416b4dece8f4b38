"""The site builds strictly offline, has a page per chapter, and shows the recorded numbers."""

from __future__ import annotations

import functools
import html
import http.server
import re
import shutil
import subprocess
import sys
import threading

import pytest

from cifar_lessons.book import chapter_status
from cifar_lessons.chapters import CHAPTERS, REPO_ROOT, training_chapters


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return site_dir


def page_text(site, path, separator=" "):
    return html.unescape(re.sub(r"<[^>]+>", separator, (site / path / "index.html").read_text()))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.id)
def test_every_chapter_has_a_page(site, chapter):
    page = site / "chapters" / chapter.notebook.stem / "index.html"
    assert page.is_file(), f"no page for chapter {chapter.id}"
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in page.read_text()


def test_results_page_shows_the_recorded_numbers(site):
    text = " ".join(page_text(site, "results").split())
    recorded = [(c, chapter_status(c)) for c in training_chapters()]
    recorded = [(c, s["record"]) for c, s in recorded if s["status"] == "ok"]
    if not recorded:
        pytest.skip("no chapter has a recorded run yet")
    for chapter, record in recorded:
        minutes = f"{record['wall_time_s'] / 60:.1f} min"
        expected = f"{100 * record['test_accuracy']:.1f}%"
        assert re.search(rf"{chapter.id} {re.escape(chapter.title)} [^%]*? {re.escape(expected)}", text), \
            f"chapter {chapter.id}: {expected} not on the results page"
        assert minutes in text and record["data"]["name"] in text
    assert (site / "results" / "index.html").read_text().count("data:image/png;base64,") == 1


def test_home_page_lists_chapters_with_accuracy(site):
    text = page_text(site, "")
    for chapter in CHAPTERS:
        assert chapter.title in text and chapter.technique in text
    code = page_text(site, "", separator="")  # highlighted code is split into spans
    assert "bash scripts/book.sh" in code and "bash scripts/test.sh" in code


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def render(url: str) -> str:
    """The DOM after headless Chromium has loaded and run the page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver); .ci/run installs it")
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
    dom = render(f"{served}/chapters/{chapter.notebook.stem}/")
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in dom
    assert re.search(r'<img[^>]+src="data:image/png;base64,', dom), "no rendered plot on the chapter page"


LIGHT_ENTRY_POINTS = {
    "import cifar_lessons.chapters": "import cifar_lessons.chapters",
    "the MkDocs hook": "import cifar_lessons.site, cifar_lessons.report",
    "cifar-lessons --help": "from cifar_lessons.cli import main\ntry:\n    main(['--help'])\n"
                            "except SystemExit:\n    pass",
    "cifar-lessons list": "from cifar_lessons.cli import main\nmain(['list'])",
    "cifar-lessons report": "from cifar_lessons.cli import main\nmain(['report'])",
}


@pytest.mark.parametrize("entry", LIGHT_ENTRY_POINTS, ids=str)
def test_light_entry_points_do_not_import_tensorflow(entry):
    """The registry, the site hook and the CLI's light commands stay fast: no TensorFlow, no Keras."""
    probe = LIGHT_ENTRY_POINTS[entry] + (
        "\nimport sys\nheavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)"
        "\nprint('HEAVY:', ','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY: \n" in result.stdout or result.stdout.rstrip().endswith("HEAVY:"), \
        f"{entry} imported {result.stdout.rsplit('HEAVY:', 1)[-1].strip()}"
