"""MkDocs hooks: the navigation, home-page chapter list and results page come from the registry
and the run records, so the site cannot drift from the results.

Registered in ``mkdocs.yml`` under ``hooks:``. Pages mark where generated content goes with
``<!-- chapters-table -->``, ``<!-- results-table -->``, ``<!-- results-chart -->`` and ``<!-- benchmark-table -->``.
"""

from __future__ import annotations

import base64
import io

from cifar_lessons.chapters import CHAPTERS


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
    """Build the Chapters section of the navigation from the registry."""
    chapters = [{f"{int(c.id)}. {c.title}": f"chapters/{c.notebook.name}"} for c in CHAPTERS]
    config["nav"] = [{"Home": "index.md"}, {"Chapters": chapters}, {"Results": "results.md"}]
    return config


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
