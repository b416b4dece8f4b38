"""The book's MkDocs hook: navigation, home-page list, results page and chapter headers come from the
registry and the run records, so the site cannot drift from the results.

Registered in ``mkdocs.yml`` under ``hooks:``; it lives beside the book, outside the installed package.
Pages mark where generated content goes with ``<!-- chapters-table -->``, ``<!-- results-table -->``,
``<!-- results-chart -->``, ``<!-- race-chart -->``, ``<!-- reference-table -->`` and
``<!-- benchmark-table -->``. Each chapter page gets a header with the chapter's recorded numbers (the
conclusion's: what it compares) and links to its notebook (download, Colab, repository). Notebook pages are
made light by ``book_html`` and their formulas drawn as MathML by ``book_mathml``. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import posixpath
import re
from pathlib import Path

import book_html  # the hook's folder is on sys.path while MkDocs loads it, and in the tests (conftest)
import book_mathml
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.utils import get_relative_url

from cifar_lessons.book.chapters import APPENDICES, CHAPTERS, PAGES

log = logging.getLogger("mkdocs.hooks.cifar_lessons")

NOTEBOOK_CSS = "assets/stylesheets/notebook.css"
# Analysis chapters (registry ``uses``) whose page compares every chapter rather than studying one model.
COMPARES_EVERY_CHAPTER = {"conclusion"}

_formula_errors: list = []


def chapters_table_markdown(results_dir=None) -> str:
    """Home-page list: each chapter with its technique and recorded test accuracy (site)."""
    from cifar_lessons.book.report import comparison_rows

    accuracy = {row["id"]: row["test_accuracy"] for row in comparison_rows(results_dir)}
    lines = ["| Chapter | Technique | Test accuracy |", "|---|---|---:|"]
    for chapter in CHAPTERS:
        link = f"[{int(chapter.id)}. {chapter.title}](chapters/{chapter.notebook.name})"
        value = accuracy.get(chapter.id)
        shown = f"{100 * value:.1f}%" if value is not None else ("-" if chapter.trains else "")
        lines.append(f"| {link} | {chapter.technique} | {shown} |")
    for appendix in APPENDICES:
        lines.append(f"| [{appendix.label}: {appendix.title}](chapters/{appendix.notebook.name}) | "
                     f"{appendix.technique} | |")
    return "\n".join(lines)


def results_chart_markdown(results_dir=None) -> str:
    """The accuracy chart over seeds as an inline PNG, drawn at its natural size (site)."""
    import matplotlib

    matplotlib.use("Agg")
    from cifar_lessons.book.charts import chapter_accuracies
    from cifar_lessons.book.report import comparison_rows

    rows = [row for row in comparison_rows(results_dir) if row["values"]]
    if not rows:
        return "*No chapter has a recorded run yet.*"
    figure = chapter_accuracies([f"{r['id']} {r['title']}" for r in rows], [r["values"] for r in rows],
                                [r["milestone"] for r in rows])
    return _figure_markdown(figure, "Test accuracy by chapter: each seed, mean ± one standard deviation, "
                                    "and the milestone")


def _figure_markdown(figure, alt: str) -> str:
    """A matplotlib figure as an inline PNG at its natural size (cifar_lessons.style), closed afterwards (site)."""
    import matplotlib.pyplot as plt

    from cifar_lessons import style

    width_px = round(figure.get_figwidth() * style.DPI)  # CSS pixels: 10-point text shows at about 14 px
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=2 * style.DPI)  # twice its page size: sharp on HiDPI, on white
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'![{alt}](data:image/png;base64,{encoded}){{ .results-chart width="{width_px}" }}'


def race_chart_markdown(results_dir=None) -> str:
    """Chapter 11's race against chapter 8 (validation accuracy against minutes, one machine) with its caption."""
    import matplotlib

    matplotlib.use("Agg")
    from cifar_lessons.going_further import race

    if not race.race_path(results_dir).is_file():
        return "*No race recorded yet (results/11/race.json).*"
    summary = race.race_summary(results_dir)
    figure = race.race_chart(results_dir)
    chart = _figure_markdown(figure, "Validation accuracy against wall-clock and CPU minutes: chapter 8's race run "
                                     "and chapter 11's runs")
    hosts = summary["hosts"]
    machines = (f"All ran on one machine: {hosts[0]}." if len(hosts) == 1 else
                f"They ran on different machines ({'; '.join(hosts)}), so their times do not compare.")
    return (f"{chart}\n\nChapter 8's race run is `results/{summary['baseline_run']}`; chapter 11's runs are "
            + ", ".join(f"`results/{run}`" for run in summary["runs"])
            + f". {machines} The dotted line is the {summary['target']:.0%} validation accuracy "
            "that chapter 8's clock stops at; chapter 11's clock runs to its evaluated, saved model.")


def on_config(config, **kwargs):
    """Build the Chapters section of the navigation from the registry.

    The shared notebook stylesheet is not in ``extra_css``: only notebook pages link it (on_post_page).
    """
    def entries(pages):
        return [{f"{c.id.lstrip('0')}. {c.title}": f"chapters/{c.notebook.name}"} for c in pages]

    config["nav"] = [{"Home": "index.md"}, {"Chapters": entries(CHAPTERS)}, {"Appendix": entries(APPENDICES)},
                     {"Results": "results.md"}, {"References": "references.md"}]
    return config


def on_pre_build(config, **kwargs):
    book_html.reset()
    _formula_errors.clear()


def _repository(config) -> tuple[str, str]:
    """The repository URL and branch from ``repo_url`` and ``edit_uri`` (edit/BRANCH/docs/)."""
    repo_url = (config.get("repo_url") or "").rstrip("/")
    match = re.match(r"edit/([^/]+)/", config.get("edit_uri") or "")
    return repo_url, match.group(1) if match else "main"


def _notebook_chapter(page):
    if not page.file.src_uri.endswith(".ipynb"):
        return None
    name = posixpath.basename(page.file.src_uri)
    return next((c for c in PAGES if c.notebook.name == name), None)


def on_page_context(context, page, config, **kwargs):
    """Notebook pages edit the notebook in chapters/ (docs/chapters is a link to it)."""
    chapter = _notebook_chapter(page)
    repo_url, branch = _repository(config)
    if chapter is not None and repo_url:
        page.edit_url = f"{repo_url}/edit/{branch}/chapters/{chapter.notebook.name}"
    return context


def _machine(record: dict) -> str:
    hardware = record["hardware"]
    gpus = ", ".join(hardware["gpus"]) or "no GPU"
    precision = record.get("precision", record["config"]["precision"])
    return f"{hardware['cpu']}, {hardware['cores']} cores, {gpus}, {precision}"


def _comparison_facts(rows: list[dict]) -> list[tuple[str, str]]:
    """The header of a page that compares every training chapter: what it compares, not one model's numbers."""
    from cifar_lessons.book.chapters import step_chapters

    step_ids = {chapter.id for chapter in step_chapters()}
    steps = [int(row["id"]) for row in rows if row["id"] in step_ids]
    parts = ([f"{steps[0]}-{steps[-1]}" if len(steps) > 1 else str(steps[0])] if steps else [])
    parts += [str(int(row["id"])) for row in rows if row["id"] not in step_ids]
    shown = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    facts = [("Compares", f"every training chapter ({shown}): test accuracy over seeds, gains and training time")]
    recorded = [row for row in rows if row["record"]]
    if recorded:
        seeds = sum(row["n"] or 0 for row in recorded)
        facts.append(("Runs", f"{len(recorded)} of {len(rows)} chapters recorded, {seeds} runs counting every seed; "
                              'all the numbers are on the <a href="../results.html">Results</a> page'))
    else:
        facts.append(("Runs", "no chapter has a recorded run yet: <code>cifar-lessons train 01</code>"))
    return facts


def chapter_header_html(chapter, config, results_dir=None) -> str:
    """The facts and links that open a chapter page, from the run records (site)."""
    from cifar_lessons.book.report import comparison_rows
    from cifar_lessons.book.seeds import gain_text, mean_sd

    rows = {row["id"]: row for row in comparison_rows(results_dir)}
    compares = chapter.slug in COMPARES_EVERY_CHAPTER  # one model's numbers would mislead there
    row = None if compares else rows.get(chapter.uses or chapter.id)
    if compares:
        facts = _comparison_facts(list(rows.values()))
    elif chapter.uses:
        studied = f" ({html.escape(rows[chapter.uses]['title'])})" if chapter.uses in rows else ""
        what = "the runs" if chapter in APPENDICES else "the model"
        facts = [("Studies", f"{what} of chapter {int(chapter.uses)}{studied}")]
    else:
        facts = [("Technique", html.escape(chapter.technique))]
    if row and row["record"]:
        record = row["record"]
        main_run = f"{100 * record['test_accuracy']:.1f}%"
        if row["n"] and row["n"] > 1:
            accuracy = f"{mean_sd(row['summary'])} over {row['n']} seeds (main run {main_run})"
        else:
            accuracy = f"{main_run} (one seed)"
        if row["status"] != "ok":
            accuracy += f" ({row['status']} record)"
        facts.append(("Test accuracy", accuracy))
        if not chapter.uses:
            gain = "the baseline" if row["gain"] is None else f"{gain_text(row)} points against the previous chapter"
            if row.get("verdict"):
                gain += f" ({html.escape(row['verdict'])})"
            facts.append(("Gain", gain))
        facts.append(("Training", f"{row['wall_time_s'] / 60:.1f} min, {row['epochs']} of at most "
                                  f"{row['max_epochs']} epochs (main run)"))
        facts.append(("Machine", html.escape(_machine(record))))
    elif not compares:
        command = f"cifar-lessons train {chapter.uses or chapter.id}"
        facts.append(("Test accuracy", f"no recorded run yet: <code>{command}</code>"))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
    name = chapter.notebook.name
    links = [f'<a class="md-button" href="{name}" download '
             'title="code and text without outputs: run it to see them">Download the notebook</a>']
    repo_url, branch = _repository(config)
    if repo_url:
        path = f"{branch}/chapters/{name}"
        if repo_url.startswith("https://github.com/"):
            colab = "https://colab.research.google.com/github/" + repo_url.removeprefix("https://github.com/")
            links.append(f'<a class="md-button" href="{colab}/blob/{path}">Open in Colab</a>')
        links.append(f'<a class="md-button" href="{repo_url}/blob/{path}">View in the repository</a>')
    return (f'<div class="chapter-header" data-search-exclude><dl>{items}</dl>'
            f'<p class="chapter-links">{" ".join(links)}</p></div>')


@event_priority(50)  # before mkdocs-glightbox wraps the images in links
def on_page_content(html_content, page, config, files, **kwargs):
    """Images as files on every page; on notebook pages also shared CSS, code blocks, formulas as MathML,
    folded outputs, numbered figure captions and a header."""
    chapter = _notebook_chapter(page)
    if chapter is None:
        return book_html.images_to_files(html_content, page, posixpath.splitext(page.file.name)[0])
    content = book_html.clean_notebook_page(html_content)
    content, failures = book_mathml.formulas_to_mathml(content, book_mathml.notebook_formulas(page.file.abs_src_path))
    for tex, problem in failures:
        log.error(f"{page.file.src_uri}: formula {tex!r}: {problem}")
        _formula_errors.append((page.file.src_uri, tex, problem))
    content = book_html.fold_long_outputs(content)
    content = book_html.images_to_files(content, page, chapter.notebook.stem)
    content = caption_figures(content, page, chapter)
    header = chapter_header_html(chapter, config)
    end_of_title = content.find("</h1>")
    if end_of_title >= 0:
        content = content[:end_of_title + 5] + header + content[end_of_title + 5:]
    else:
        content = header + content
    return content


def figure_prefix(chapter) -> str:
    """What a page's figure numbers start with: the chapter's number (7 in "Figure 7.2"), or the appendix's letter."""
    return str(int(chapter.id)) if chapter.id.isdigit() else chapter.id


def caption_figures(content: str, page, chapter) -> str:
    """The page's figures, paired in order with its notebook's image outputs, with numbered captions from their cells.

    Fails the build when the page and the notebook count different figures: a caption under the wrong figure is
    worse than none. Figures whose cell has no caption comment (captioned with their section's heading) are logged.
    """
    try:
        figures = book_html.notebook_figures(page.file.abs_src_path)
        content, from_headings = book_html.caption_figures(content, figures, figure_prefix(chapter))
    except ValueError as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
    if from_headings:
        log.info(f"{page.file.src_uri}: figure(s) {', '.join(from_headings)} captioned with their section's heading: "
                 "their cell does not start with a one-sentence comment saying what it draws")
    return content


def on_post_page(output, page, config, **kwargs):
    """Notebook pages link the shared notebook stylesheet, before the book's own (which overrides it)."""
    if _notebook_chapter(page) is None:
        return output
    book_html.collect_classes(output)
    link = f'<link rel="stylesheet" href="{get_relative_url(NOTEBOOK_CSS, page.url)}">'
    extra = [get_relative_url(str(path), page.url) for path in config["extra_css"]]
    first = min((i for i in (output.find(f'<link rel="stylesheet" href="{href}">') for href in extra) if i >= 0),
                default=output.find("</head>"))
    return output[:first] + link + output[first:]


def on_post_build(config, **kwargs):
    """Write the shared notebook stylesheet and the notebooks' images; name images that were too big.

    Fails the build if a formula did not convert (each one was logged where it was found).
    """
    if _formula_errors:
        listed = "\n".join(f"  {page}: {tex!r}: {problem}" for page, tex, problem in _formula_errors)
        raise PluginError(f"{len(_formula_errors)} formula(s) did not convert to MathML:\n{listed}")
    site = Path(config["site_dir"])
    css = site / NOTEBOOK_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text(book_html.shared_stylesheet())
    for relative, data in book_html.STATE["files"].items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # Material ships source maps, and search support for other languages than English (lunr/min, and a Thai
    # word splitter): an English book served to readers needs neither.
    search = config["plugins"].get("material/search")
    languages = set(search.config.lang or ["en"]) if search is not None else {"en"}
    unused = list(site.glob("assets/**/*.map"))
    if languages == {"en"}:
        unused += [*site.glob("assets/javascripts/lunr/min/*"), site / "assets/javascripts/lunr/wordcut.js"]
    for path in unused:
        path.unlink(missing_ok=True)
    strip_downloadable_notebooks(site)
    for label, before, after in book_html.STATE["oversized"]:
        log.info(f"{label}: {before // 1000} KB is over {book_html.IMAGE_BUDGET // 1000} KB, re-encoded to "
                 f"{after // 1000} KB; "
                 "draw it smaller in the notebook")


def strip_downloadable_notebooks(site: Path) -> None:
    """The notebooks a reader downloads from the site keep code and prose, not outputs (Chapter 1).

    A downloaded notebook is there to be run; its outputs (every figure again) are on the page above
    and in the repository's copy, and would double the site's size.
    """
    for notebook in site.glob("chapters/*.ipynb"):
        content = json.loads(notebook.read_text())
        for cell in content.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Replace the markers with tables and charts generated from the run records."""
    from cifar_lessons.book.benchmarks import benchmark_markdown
    from cifar_lessons.book.reference import reference_markdown
    from cifar_lessons.book.report import accuracy_table_markdown

    replacements = {
        "<!-- chapters-table -->": chapters_table_markdown,
        "<!-- results-table -->": accuracy_table_markdown,
        "<!-- results-chart -->": results_chart_markdown,
        "<!-- race-chart -->": race_chart_markdown,
        "<!-- reference-table -->": lambda: reference_markdown()
        or "*No reference run recorded yet (results/11/reference).*",
        "<!-- benchmark-table -->": lambda: benchmark_markdown()
        or "*Not measured yet: run `python scripts/benchmark.py` on an idle machine.*",
    }
    for marker, render in replacements.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
