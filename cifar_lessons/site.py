"""MkDocs hooks: the navigation, home-page chapter list and results page come from the registry
and the run records, so the site cannot drift from the results; notebook pages are made light,
readable and linked.

Registered in ``mkdocs.yml`` under ``hooks:``. Pages mark where generated content goes with
``<!-- chapters-table -->``, ``<!-- results-table -->``, ``<!-- results-chart -->`` and ``<!-- benchmark-table -->``.

Each chapter page gets a header with the chapter's recorded numbers and links to its notebook
(download, Colab, repository). mkdocs-jupyter embeds ~600 KB of notebook CSS in every page and has no
option to turn that off: the hook moves it into one shared stylesheet, moves inline plots into image
files (re-encoding any over ``IMAGE_BUDGET`` bytes), replaces the notebook copy widgets with Material's
own code blocks and copy button, and folds long outputs. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority

from cifar_lessons.chapters import CHAPTERS

log = logging.getLogger("mkdocs.hooks.cifar_lessons")

NOTEBOOK_CSS = "assets/stylesheets/notebook.css"
# A notebook output longer than this many lines is folded into a <details> block.
LONG_OUTPUT_LINES = 20
# Images over this many bytes are re-encoded (palette PNG, at most MAX_IMAGE_WIDTH pixels wide).
IMAGE_BUDGET = 200_000
MAX_IMAGE_WIDTH = 1400

_state: dict = {"css": {}, "files": {}, "oversized": []}


def chapters_table_markdown(results_dir=None) -> str:
    """Home-page list: each chapter with its technique and recorded test accuracy (site)."""
    from cifar_lessons.report import comparison_rows

    accuracy = {row["id"]: row["test_accuracy"] for row in comparison_rows(results_dir)}
    lines = ["| Chapter | Technique | Test accuracy |", "|---|---|---:|"]
    for chapter in CHAPTERS:
        link = f"[{int(chapter.id)}. {chapter.title}](chapters/{chapter.notebook.name})"
        value = accuracy.get(chapter.id)
        shown = f"{100 * value:.1f}%" if value is not None else ("-" if chapter.trains else "")
        lines.append(f"| {link} | {chapter.technique} | {shown} |")
    return "\n".join(lines)


def results_chart_markdown(results_dir=None) -> str:
    """The accuracy chart over seeds as an inline PNG, drawn for the ~700 px content column (site)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cifar_lessons.plots import chapter_accuracies
    from cifar_lessons.report import comparison_rows

    rows = [row for row in comparison_rows(results_dir) if row["values"]]
    if not rows:
        return "*No chapter has a recorded run yet.*"
    figure = chapter_accuracies([f"{r['id']} {r['title']}" for r in rows], [r["values"] for r in rows],
                                [r["milestone"] for r in rows])
    width_px = 700  # CSS pixels: 7 inches at 100 px per inch, so 10-point text shows at about 14 px
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=2 * width_px / figure.get_figwidth(), transparent=True)  # sharp on HiDPI
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    alt = "Test accuracy by chapter: each seed, mean ± one standard deviation, and the milestone"
    return f'![{alt}](data:image/png;base64,{encoded}){{ .results-chart width="{width_px}" }}'


def on_config(config, **kwargs):
    """Build the Chapters section of the navigation from the registry; load the shared notebook CSS first."""
    chapters = [{f"{int(c.id)}. {c.title}": f"chapters/{c.notebook.name}"} for c in CHAPTERS]
    config["nav"] = [{"Home": "index.md"}, {"Chapters": chapters}, {"Results": "results.md"}]
    if NOTEBOOK_CSS not in config["extra_css"]:
        config["extra_css"].insert(0, NOTEBOOK_CSS)  # before extra.css, which overrides it
    return config


def on_pre_build(config, **kwargs):
    _state.update(css={}, files={}, oversized=[])


def _repository(config) -> tuple[str, str]:
    """The repository URL and branch from ``repo_url`` and ``edit_uri`` (edit/BRANCH/docs/)."""
    repo_url = (config.get("repo_url") or "").rstrip("/")
    match = re.match(r"edit/([^/]+)/", config.get("edit_uri") or "")
    return repo_url, match.group(1) if match else "main"


def _notebook_chapter(page):
    if not page.file.src_uri.endswith(".ipynb"):
        return None
    name = posixpath.basename(page.file.src_uri)
    return next((c for c in CHAPTERS if c.notebook.name == name), None)


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


def chapter_header_html(chapter, config, results_dir=None) -> str:
    """The facts and links that open a chapter page, from the run records (site)."""
    from cifar_lessons.report import _gain_text, _mean_sd, comparison_rows

    rows = {row["id"]: row for row in comparison_rows(results_dir)}
    facts = []
    row = rows.get(chapter.uses or chapter.id)
    if chapter.uses:
        studied = f" ({html.escape(rows[chapter.uses]['title'])})" if chapter.uses in rows else ""
        facts.append(("Studies", f"the model of chapter {int(chapter.uses)}{studied}"))
    else:
        facts.append(("Technique", html.escape(chapter.technique)))
    if row and row["record"]:
        record = row["record"]
        main_run = f"{100 * record['test_accuracy']:.1f}%"
        if row["n"] and row["n"] > 1:
            accuracy = f"{_mean_sd(row['summary'])} over {row['n']} seeds (main run {main_run})"
        else:
            accuracy = f"{main_run} (one seed)"
        if row["status"] != "ok":
            accuracy += f" ({row['status']} record)"
        facts.append(("Test accuracy", accuracy))
        if not chapter.uses:
            gain = "the baseline" if row["gain"] is None else f"{_gain_text(row)} points against the previous chapter"
            if row.get("verdict"):
                gain += f" ({html.escape(row['verdict'])})"
            facts.append(("Gain", gain))
        facts.append(("Training", f"{row['wall_time_s'] / 60:.1f} min, {row['epochs']} of at most "
                                  f"{row['max_epochs']} epochs (main run)"))
        facts.append(("Machine", html.escape(_machine(record))))
    else:
        command = f"cifar-lessons train {chapter.uses or chapter.id}"
        facts.append(("Test accuracy", f"no recorded run yet: <code>{command}</code>"))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
    name = chapter.notebook.name
    links = [f'<a class="md-button" href="{name}" download>Download the notebook</a>']
    repo_url, branch = _repository(config)
    if repo_url:
        path = f"{branch}/chapters/{name}"
        if repo_url.startswith("https://github.com/"):
            colab = "https://colab.research.google.com/github/" + repo_url.removeprefix("https://github.com/")
            links.append(f'<a class="md-button" href="{colab}/blob/{path}">Open in Colab</a>')
        links.append(f'<a class="md-button" href="{repo_url}/blob/{path}">View in the repository</a>')
    return (f'<div class="chapter-header" data-search-exclude><dl>{items}</dl>'
            f'<p class="chapter-links">{" ".join(links)}</p></div>')


_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_UI_ICONS = re.compile(r"--jp-icon-[\w-]+:\s*url\([^)]*\);?")
_SCRIPT = re.compile(r"<script[^>]*>(.*?)</script>", re.S)
_CLIPBOARD = re.compile(r'<div class="zeroclipboard-container">.*?</clipboard-copy>\s*</div>', re.S)
_CLIPBOARD_TEXT = re.compile(r'<div class="clipboard-copy-txt"[^>]*>.*?</div>', re.S)
_CODE = re.compile(r'<div class="highlight-ipynb hl-(\w+)"><pre>(<span></span>)?(.*?)</pre></div>', re.S)
_PROMPT = re.compile(r'<div class="(jp-(?:Input|Output)Prompt [^"]*)">')
_TEXT_OUTPUT = re.compile(r'(<div class="jp-Rendered(?:Text|HTMLCommon)[^"]*"[^>]*>\s*)<pre([^>]*)>(.*?)</pre>', re.S)
_IMAGE = re.compile(r'src="data:image/(png|jpeg);base64,([^"]+)"')


def _collect_css(match) -> str:
    css = match.group(1).strip()
    css = _UI_ICONS.sub("", css)  # JupyterLab's toolbar icons (80 KB of inline SVG): a static page has no toolbar
    if css and not css.startswith("["):  # mkdocs-jupyter also appends a list's repr: not CSS
        _state["css"].setdefault(css, None)
    return ""


def _fold_long_output(match) -> str:
    lines = match.group(3).rstrip("\n").count("\n") + 1
    pre = f"<pre{match.group(2)}>{match.group(3)}</pre>"
    if lines <= LONG_OUTPUT_LINES:
        return match.group(1) + pre
    return (f'{match.group(1)}<details class="nb-output"><summary>Output: {lines} lines (click to show)</summary>'
            f"{pre}</details>")


def _image_file(data: bytes, kind: str, label: str) -> tuple[bytes, str]:
    """The image as a file's bytes, re-encoded if it is over IMAGE_BUDGET."""
    if len(data) <= IMAGE_BUDGET:
        return data, kind
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.width > MAX_IMAGE_WIDTH:
        image = image.resize((MAX_IMAGE_WIDTH, round(image.height * MAX_IMAGE_WIDTH / image.width)), Image.LANCZOS)
    if image.mode == "RGBA":
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    else:
        image = image.convert("RGB").quantize(256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    _state["oversized"].append((label, len(data), len(buffer.getvalue())))
    return buffer.getvalue(), "png"


def _images_to_files(content: str, page, stem: str) -> str:
    """Inline data: images become files next to the page (cached, zoomable without copying them)."""
    folder = posixpath.dirname(page.file.dest_uri)

    def to_file(match):
        index = len([key for key in _state["files"] if posixpath.basename(key).startswith(f"{stem}-")]) + 1
        label = f"{page.file.src_uri} figure {index}"
        data, kind = _image_file(base64.b64decode(match.group(2)), match.group(1), label)
        relative = f"figures/{stem}-{index}.{'jpg' if kind == 'jpeg' else kind}"
        _state["files"][posixpath.join(folder, relative) if folder else relative] = data
        return f'src="{relative}"'

    return _IMAGE.sub(to_file, content)


@event_priority(50)  # before mkdocs-glightbox wraps the images in links
def on_page_content(html_content, page, config, files, **kwargs):
    """Images as files on every page; on notebook pages also shared CSS, code blocks, folded outputs, a header."""
    chapter = _notebook_chapter(page)
    if chapter is None:
        return _images_to_files(html_content, page, posixpath.splitext(page.file.name)[0])
    content = _STYLE.sub(_collect_css, html_content)
    content = _SCRIPT.sub(lambda m: "" if "clipboard" in m.group(1) else m.group(0), content)
    content = _CLIPBOARD.sub("", content)
    content = _CLIPBOARD_TEXT.sub("", content)
    content = _CODE.sub(lambda m: f'<div class="highlight language-{m.group(1)}"><pre><span></span>'
                                  f"<code>{m.group(3)}</code></pre></div>", content)
    content = _PROMPT.sub(r'<div class="\1" data-search-exclude>', content)
    content = _TEXT_OUTPUT.sub(_fold_long_output, content)
    content = _images_to_files(content, page, chapter.notebook.stem)
    header = chapter_header_html(chapter, config)
    end_of_title = content.find("</h1>")
    if end_of_title >= 0:
        content = content[:end_of_title + 5] + header + content[end_of_title + 5:]
    else:
        content = header + content
    return content


def on_post_build(config, **kwargs):
    """Write the shared notebook stylesheet and the notebooks' images; name images that were too big."""
    site = Path(config["site_dir"])
    css = site / NOTEBOOK_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text("\n".join(_state["css"]))
    for relative, data in _state["files"].items():
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
    for label, before, after in _state["oversized"]:
        log.info(f"{label}: {before // 1000} KB is over {IMAGE_BUDGET // 1000} KB, re-encoded to {after // 1000} KB; "
                 "draw it smaller in the notebook")


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Replace the markers with tables and charts generated from the run records."""
    from cifar_lessons.report import accuracy_table_markdown, benchmark_markdown

    replacements = {
        "<!-- chapters-table -->": chapters_table_markdown,
        "<!-- results-table -->": accuracy_table_markdown,
        "<!-- results-chart -->": results_chart_markdown,
        "<!-- benchmark-table -->": lambda: benchmark_markdown()
        or "*Not measured yet: run `python scripts/benchmark.py` on an idle machine.*",
    }
    for marker, render in replacements.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
