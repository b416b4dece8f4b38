"""The site builds strictly offline and quietly, stays within its weight budgets, shows no notebook tooling,
and its light entry points load no TensorFlow; its search index, 404 page and sitemap work."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from book_html import IMAGE_BUDGET
from book_site import NOTEBOOK_CSS
from site_support import BUILD_LOGS, mkdocs_config

from cifar_lessons.book.chapters import PAGES, REPO_ROOT, get_chapter

PAGE_BUDGET = 600_000
# Figures are drawn at twice their size on the page (sharp on HiDPI screens and when zoomed): about 3.3 MB of
# the site, against 1.5 MB at 1x.
SITE_BUDGET = 8_000_000
# The shared notebook stylesheet, once the rules for JupyterLab's editor, toolbars and widgets are dropped.
NOTEBOOK_CSS_BUDGET = 150_000


def test_build_is_quiet_and_does_not_load_tensorflow(site):
    """The build reads records, not models: no TensorFlow or Keras log lines, no warnings."""
    log = BUILD_LOGS[site]
    for marker in ("tensorflow", "oneDNN", "cuda", "WARNING"):
        assert marker not in log, f"the build printed {marker!r}:\n{log[-2000:]}"


def test_page_and_site_weight(site):
    """Shared CSS loaded once, figures as files: no page over the budget and the site under its own."""
    pages = {path.relative_to(site): path.stat().st_size for path in site.rglob("*.html")}
    heavy = {str(path): size for path, size in pages.items() if size > PAGE_BUDGET}
    assert not heavy, f"pages over {PAGE_BUDGET // 1000} KB: {heavy}"
    total = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    assert total < SITE_BUDGET, f"the site weighs {total / 1e6:.1f} MB (budget {SITE_BUDGET / 1e6:.0f} MB)"
    for path in site.rglob("*.html"):
        assert path.read_text().count("jp-OutputArea-output{") == 0, f"{path.name} embeds the notebook CSS"
    figures = {p.name: p.stat().st_size for p in (site / "chapters" / "figures").glob("*") if p.is_file()}
    assert figures, "no figure files: the hook did not move the notebooks' plots out of the pages"
    big = {name: size for name, size in figures.items() if size > IMAGE_BUDGET}
    assert not big, f"figures over {IMAGE_BUDGET // 1000} KB: {big}"


def test_notebook_css_only_on_notebook_pages(site):
    """The shared notebook stylesheet is linked by chapter pages (before extra.css, which overrides it) only,
    and carries no rules for JupyterLab's editor and toolbars."""
    for page in ("index.html", "results.html", "404.html"):
        assert "notebook.css" not in (site / page).read_text(), f"{page} links the notebook stylesheet"
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        links = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
        assert f"../{NOTEBOOK_CSS}" in links, f"chapter {chapter.id} does not link the notebook stylesheet"
        assert links.index(f"../{NOTEBOOK_CSS}") < links.index("../stylesheets/extra.css")
    css = (site / NOTEBOOK_CSS).read_text()
    assert len(css.encode()) < NOTEBOOK_CSS_BUDGET, f"notebook.css weighs {len(css.encode()) // 1000} KB"
    assert ".jupyter-wrapper .jp-OutputArea" in css  # pruned, not emptied
    for unused in (".CodeMirror-cursor", ".jp-Toolbar", ".jp-DragImage"):
        assert unused not in css, f"notebook.css still has rules for {unused}"


def test_notebook_tooling_is_not_shown(site):
    """No cell-tag chips ("parameters"), MathJax or Mermaid loaders, or CDN scripts on chapter pages."""
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        for marker in ('class="celltoolbar"', 'class="cell-tag"', "text/x-mathjax-config", '<script src="">',
                       "cdnjs.cloudflare.com"):
            assert marker not in page, f"chapter {chapter.id} still has {marker!r}"


def test_search_snippets_are_text_not_widgets(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    for entry in index["docs"]:
        text = entry["text"]
        assert "Copied!" not in text, f"{entry['location']}: copy-button text in the search index"
        assert not re.match(r"(<[^>]+>)*\s*(In|Out)\s*\[\d*\]:", text), f"{entry['location']}: starts with a prompt"


def test_search_titles_have_no_pilcrow_and_notebook_headings_have_materials_permalinks(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    titles = [doc["title"] for doc in index["docs"]]
    assert titles and not [title for title in titles if "\u00b6" in title]
    page = (site / "chapters" / get_chapter("02").notebook.with_suffix(".html").name).read_text()
    assert 'class="anchor-link"' not in page and '<a class="headerlink" href="#the-technique"' in page


def test_the_404_page_and_the_sitemap_work_under_the_project_path(site):
    from urllib.parse import urlparse

    site_url = mkdocs_config()["site_url"]
    path = urlparse(site_url).path  # /REPO/ on GitHub Pages: the 404 page is served at any depth below it
    assert path.startswith("/") and path.endswith("/") and len(path) > 1
    not_found = (site / "404.html").read_text()
    assert f'href="{path}assets/stylesheets/main.' in not_found
    sitemap = (site / "sitemap.xml").read_text()
    for chapter in PAGES:
        assert f"<loc>{site_url}chapters/{chapter.notebook.with_suffix('.html').name}</loc>" in sitemap


LIGHT_ENTRY_POINTS = {
    "import cifar_lessons.book.chapters": "import cifar_lessons.book.chapters",
    "the MkDocs hook": "import sys\nsys.path.insert(0, 'hooks')\nimport book_site, cifar_lessons.book.report",
    "cifar-lessons --help": "from cifar_lessons.book.cli import main\ntry:\n    main(['--help'])\n"
                            "except SystemExit:\n    pass",
    "cifar-lessons list": "from cifar_lessons.book.cli import main\nmain(['list'])",
    "cifar-lessons report": "from cifar_lessons.book.cli import main\nmain(['report'])",
    "the record readers": "import cifar_lessons.book.ladder, cifar_lessons.book.seeds",
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
