"""Every chapter has a page whose header states its recorded run and links its notebook; the home, results and
references pages show what the records and the chapters say; links between notebooks lead to pages."""

from __future__ import annotations

import html
import json
import re

import nbformat
import pytest
from site_support import mkdocs_config

from cifar_lessons.book.chapters import CHAPTERS, PAGES, REPO_ROOT, get_chapter, training_chapters
from cifar_lessons.book.runs import chapter_status


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_chapter_header_states_the_record_and_links_the_notebook(site, chapter):
    page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
    match = re.search(r'<div class="chapter-header".*?</div>', page, re.S)
    assert match, f"chapter {chapter.id} has no header"
    header = html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))
    studied = get_chapter(chapter.uses or chapter.id)
    record = chapter_status(studied)["record"]
    if chapter.slug == "conclusion":  # compares every chapter: one model's numbers would mislead there
        assert "every training chapter" in header and "%" not in header and " min" not in header, header
        assert f"chapter {int(chapter.uses)}" not in header, header
        results = re.search(r'href="([^"]+)">Results</a>', match.group(0))
        assert results and (site / "chapters" / results.group(1)).resolve() == (site / "results.html").resolve()
    elif record is not None:
        assert f"{100 * record['test_accuracy']:.1f}%" in header
        assert f"{record['wall_time_s'] / 60:.1f} min" in header
        assert record["hardware"]["cpu"] in header
    if not chapter.uses:
        assert chapter.technique in header
    links = dict((text, href) for href, text in re.findall(r'<a class="md-button" href="([^"]+)"[^>]*>([^<]+)</a>',
                                                           match.group(0)))
    download = links["Download the notebook"]
    assert (site / "chapters" / download).is_file(), f"the download link {download} leads nowhere"
    # The download is the notebook to run: every cell of the committed one, without its outputs.
    downloaded = json.loads((site / "chapters" / download).read_text())
    committed = json.loads(chapter.notebook.read_text())
    assert [cell["source"] for cell in downloaded["cells"]] == [cell["source"] for cell in committed["cells"]]
    assert not any(cell.get("outputs") for cell in downloaded["cells"]), "the downloaded notebook carries outputs"
    repo_url = mkdocs_config()["repo_url"].rstrip("/")
    assert links["View in the repository"] == f"{repo_url}/blob/main/chapters/{chapter.notebook.name}"
    assert links["Open in Colab"] == ("https://colab.research.google.com/github/"
                                      f"{repo_url.removeprefix('https://github.com/')}/blob/main/chapters/"
                                      f"{chapter.notebook.name}")
    edit = re.search(r'href="([^"]+)"[^>]*title="Edit this page"', page)
    assert edit and edit.group(1) == f"{repo_url}/edit/main/chapters/{chapter.notebook.name}"
    assert (REPO_ROOT / "chapters" / chapter.notebook.name).is_file()


def test_markdown_pages_edit_their_source(site):
    repo_url = mkdocs_config()["repo_url"].rstrip("/")
    for page, source in (("index.html", "docs/index.md"), ("results.html", "docs/results.md")):
        edit = re.search(r'href="([^"]+)"[^>]*title="Edit this page"', (site / page).read_text())
        assert edit and edit.group(1) == f"{repo_url}/edit/main/{source}"
        assert (REPO_ROOT / source).is_file()


def page_text(site, path, separator=" "):
    return html.unescape(re.sub(r"<[^>]+>", separator, (site / path).read_text()))


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_every_chapter_has_a_page(site, chapter):
    page = site / "chapters" / f"{chapter.notebook.stem}.html"
    assert page.is_file(), f"no page for chapter {chapter.id}"
    assert f"{chapter.label}: {chapter.title}" in page.read_text()


def test_results_page_shows_the_recorded_numbers(site):
    text = " ".join(page_text(site, "results.html").split())
    recorded = [(c, chapter_status(c)) for c in training_chapters()]
    recorded = [(c, s["record"]) for c, s in recorded if s["status"] == "ok"]
    if not recorded:
        pytest.skip("no chapter has a recorded run yet")
    from cifar_lessons.book.report import comparison_rows

    means = {row["id"]: row["test_accuracy"] for row in comparison_rows()}
    for chapter, record in recorded:
        minutes = f"{record['wall_time_s'] / 60:.1f} min"
        # The row shows the mean over the recorded seeds, then each seed's value, the main run's among them.
        mean, main = f"{100 * means[chapter.id]:.1f}", f"{100 * record['test_accuracy']:.1f}"
        assert re.search(rf"{chapter.id} {re.escape(chapter.title)} {re.escape(mean)}(?: ± [0-9.]+)?% "
                         rf"[^%]*?\b{re.escape(main)}\b", text), \
            f"chapter {chapter.id}: mean {mean}% and main run {main} not on the results page"
        assert minutes in text and record["data"]["name"] in text
    page = (site / "results.html").read_text()
    charts = re.findall(r'<img[^>]+src="(figures/results-\d+[.]png)"', page)
    assert len(charts) == 2 and all((site / chart).is_file() for chart in charts), (
        "the results page should show two charts: accuracy by chapter, and chapter 11's race")
    from cifar_lessons.going_further.race import race_summary

    race = race_summary()
    assert f"results/{race['baseline_run']}" in text and all(f"results/{run}" in text for run in race["runs"])


def test_home_page_lists_chapters_with_accuracy(site):
    text = page_text(site, "index.html")
    for chapter in CHAPTERS:
        assert chapter.title in text and chapter.technique in text
    code = page_text(site, "index.html", separator="")  # highlighted code is split into spans
    assert "bash scripts/book.sh" in code and "bash scripts/test.sh" in code


def test_chapters_link_to_chapter_1s_training_section_on_the_site_and_in_jupyter(site):
    for chapter in training_chapters()[1:8]:
        source = " ".join(cell.source for cell in nbformat.read(chapter.notebook, as_version=4).cells)
        assert "](01_data_and_baseline.ipynb#training)" in source  # works in Jupyter and Colab
        page = (site / "chapters" / chapter.notebook.with_suffix(".html").name).read_text()
        assert 'href="01_data_and_baseline.html#training"' in page  # and on the site
        assert f'href="{chapter.notebook.name}" download' in page  # the download button keeps the notebook
    assert 'id="training"' in (site / "chapters" / "01_data_and_baseline.html").read_text()


def test_links_between_notebooks_lead_to_pages(site):
    """A link from one notebook to another names the .ipynb (for Jupyter and Colab); on the site it must lead to
    the page, and only the download button may point at a notebook file."""
    for chapter in PAGES:
        page = (site / "chapters" / chapter.notebook.with_suffix(".html").name).read_text()
        to_notebooks = [tag for tag in re.findall(r"<a [^>]*href=\"(?!https?:)[^\"#]*\.ipynb[^\"]*\"[^>]*>", page)
                        if " download" not in tag]
        assert not to_notebooks, f"{chapter.label} links a notebook file instead of its page: {to_notebooks}"
    eleven = (site / "chapters" / "11_going_further.html").read_text()
    assert 'href="A_fast_recipe_notes.html"' in eleven


def test_every_citation_in_the_chapters_is_in_the_references(site):
    """An author-year citation in any chapter's prose names a work the References page lists, with its chapter."""
    references = (REPO_ROOT / "docs" / "references.md").read_text()
    entries = [" ".join(entry.split()) for entry in references.split("\n- ")[1:]]
    cited = re.compile(r"(?:van )?([A-Z][a-zü]+)(?: (?:&|and) [A-Z][a-z]+| et al\.)?,? \(?(\d{4})\)?")
    for chapter in PAGES:
        text = " ".join(cell.source for cell in nbformat.read(chapter.notebook, as_version=4).cells
                        if cell.cell_type == "markdown")
        for author, year in set(cited.findall(" ".join(text.split()))):
            if not 1940 < int(year) < 2030 or author in {"Chapter", "Keras", "Python", "December"}:
                continue
            matching = [entry for entry in entries if author in entry.split(" (")[0] and f"({year})" in entry]
            assert matching, f"chapter {chapter.id} cites {author} {year}, which docs/references.md does not list"
            kind, number = chapter.label.split()  # Chapter 11, Appendix A
            assert re.search(rf"{kind}(?:es|s)? [^.]*\b{number}\b", matching[0]), \
                f"docs/references.md does not name {chapter.label} for {author} {year}"
    assert (site / "references.html").is_file()
