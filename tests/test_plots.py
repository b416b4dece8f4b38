"""The book's figures as a reader sees them: ink that reads, and legends that cover no data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifar_lessons import plots, style  # noqa: E402


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two colours."""
    from matplotlib.colors import to_rgb

    def luminance(colour):
        channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_ink_reads_on_the_paper():
    assert contrast(style.INK, style.PAPER) >= 4.5
    assert style.RC["text.color"] == style.INK and style.RC["figure.facecolor"] == style.PAPER


def history(epochs=12, drop_at=6):
    epoch = list(range(1, epochs + 1))
    loss = list(np.linspace(2.0, 0.4, epochs))
    return {"epoch": epoch, "loss": loss, "val_loss": [v + 0.2 for v in loss],
            "accuracy": list(np.linspace(0.3, 0.9, epochs)), "val_accuracy": list(np.linspace(0.3, 0.8, epochs)),
            "learning_rate": [1e-3 if e < drop_at else 1e-4 for e in epoch]}


def data_extents(ax):
    """Display-space boxes of everything plotted on an axes: line points, and bars."""
    points = [line.get_transform().transform(line.get_xydata()) for line in ax.get_lines() if len(line.get_xydata())]
    boxes = [patch.get_window_extent() for patch in ax.patches]
    return points, boxes


def covered(legend, ax) -> bool:
    box = legend.get_window_extent()
    points, boxes = data_extents(ax)
    return any(box.contains(x, y) for pts in points for x, y in pts) or any(box.overlaps(b) for b in boxes)


@pytest.mark.parametrize("figure", [
    lambda: plots.training_curves(history(), title="t", compare=history(15), compare_label="before", kept_epoch=9),
    lambda: plots.class_balance(np.repeat(np.arange(10), 50), np.repeat(np.arange(10), 10),
                                [f"c{i}" for i in range(10)]),
    lambda: plots.pixel_histograms(np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3))),
    lambda: plots.lr_sweep({"subset": 1000, "epochs": 3, "runs": [
        {"learning_rate": rate, "batch_norm": bn, "history": {"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2],
                                                              "val_accuracy": [0.3, 0.4, 0.5]}}
        for rate in (1e-3, 1e-2) for bn in (False, True)]}),
], ids=["training_curves", "class_balance", "pixel_histograms", "lr_sweep"])
def test_legends_cover_no_data(figure):
    fig = figure()
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, "the figure has no legend"
    for legend in legends:
        for ax in fig.axes:
            assert not covered(legend, ax), f"a legend covers data in the panel {ax.get_title()!r}"
    plt.close(fig)


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def chapter_labels():
    from cifar_lessons.book.chapters import training_chapters

    return [f"{chapter.id} {chapter.title}" for chapter in training_chapters()]


def texts(fig):
    """Every text the figure draws (a tick label outside the view is not drawn), with its box in display pixels."""
    from unittest import mock

    drawn, draw = [], matplotlib.text.Text.draw

    def record(text, renderer):
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text, text.get_window_extent(renderer)))

    with mock.patch.object(matplotlib.text.Text, "draw", record):
        fig.canvas.draw()
    return drawn


def rng_images(count, size=32):
    return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


PHONE_FIGURES = {
    "sample_grid": lambda: plots.sample_grid(rng_images(100), np.repeat(np.arange(10), 10), CLASSES),
    "class_balance": lambda: plots.class_balance(np.repeat(np.arange(10), 50), np.repeat(np.arange(10), 10), CLASSES),
    "pixel_histograms": lambda: plots.pixel_histograms(rng_images(8)),
    "training_curves": lambda: plots.training_curves(history(), title="Chapter 8: a title of forty-odd characters",
                                                     compare=history(15), compare_label="chapter 7", kept_epoch=9),
    "train_validation_gap": lambda: plots.train_validation_gap(
        {"chapter 01 (a small CNN on raw pixels)": history(),
         "chapter 02 (per-channel standardization inside the model)": history()}),
    "learning_rate": lambda: plots.learning_rate(history(), compare=history(), compare_label="chapter 6"),
    "lr_sweep": lambda: plots.lr_sweep({"subset": 10000, "epochs": 3, "runs": [
        {"learning_rate": rate, "batch_norm": bn, "history": {"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2],
                                                              "val_accuracy": [0.3, 0.4, 0.5]}}
        for rate in (1e-3, 3e-3, 1e-2, 3e-2) for bn in (False, True)]}),
    "confusion": lambda: plots.confusion(np.random.default_rng(0).integers(1, 900, (10, 10)), CLASSES),
    "image_grid": lambda: plots.image_grid(rng_images(8), ["automobile\n→ truck\n99.97%"] * 8, columns=4),
    "filters": lambda: plots.filters(np.random.default_rng(0).normal(size=(3, 3, 3, 32))),
    "feature_map_rows": lambda: plots.feature_map_rows(
        rng_images(4), np.random.default_rng(0).random((4, 8, 8, 128)), [0, 17, 33, 64, 100, 127],
        "stage3_relu2: 8x8 positions, 128 channels\n(6 most active shown)", ["automobile"] * 4),
    "class_activation_maps": lambda: plots.class_activation_maps(
        rng_images(5), {"predicted\nclass": np.random.default_rng(0).random((5, 32, 32)),
                        "true\nclass": np.random.default_rng(1).random((5, 32, 32))},
        ["automobile\n→ airplane\n99.97%"] * 5),
    "reliability_diagram": lambda: plots.reliability_diagram(
        _reliability(), "Chapter 8's model on the test set"),
    "reliability_grid": lambda: plots.reliability_grid(
        {f"Chapter {c}, {when}": _reliability() for c in (8, 11) for when in ("as trained", "T = 1.68")}),
}


def _reliability():
    from cifar_lessons import analysis

    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 2000)
    return analysis.reliability(confidence, rng.random(2000) < confidence)


def _chart_figures():
    from cifar_lessons.book import charts

    labels = chapter_labels()
    n = len(labels)
    return {
        "chapter_accuracies": lambda: charts.chapter_accuracies(
            labels, [[0.6 + 0.03 * i, 0.61 + 0.03 * i, 0.62 + 0.03 * i] for i in range(n)], [0.5] * n),
        "gains_and_costs": lambda: charts.gains_and_costs(
            labels, [None] + [0.021] * (n - 1), [12.5] * n, [0.05] * n, gain_errors=[None] + [0.008] * (n - 1)),
        "ablation_chart": lambda: charts.ablation_chart(
            ["whitening layer (frozen first convolution)", "label smoothing", "lookahead"] * 2,
            [-0.012, 0.001, -0.004] * 2, [-0.01, 0.002, -0.003] * 2, [0.003] * 6, [0.004] * 6),
        "budget_chart": lambda: charts.budget_chart(
            [10, 10, 12, 12, 15, 15], [0.90, 0.905, 0.91, 0.912, 0.915, 0.92],
            {"airbench94 on this copy": 0.908, "goal": 0.94}, race_epochs=10),
    }


@pytest.mark.parametrize("name", [*PHONE_FIGURES, "chapter_accuracies", "gains_and_costs", "ablation_chart",
                                  "budget_chart", "race_chart"])
def test_every_figure_reads_on_a_phone(name):
    """On a 412-pixel phone the site shrinks a figure to its 365-pixel column: drawn at most COLUMN_WIDTH wide, with
    no text under MIN_FONT_SIZE, its smallest label stays at least 10 pixels tall; and no two labels overlap."""
    if name == "race_chart":
        from cifar_lessons.going_further.race import race_chart

        fig = race_chart()
    else:
        fig = {**PHONE_FIGURES, **_chart_figures()}[name]()
    assert fig.get_figwidth() <= style.COLUMN_WIDTH + 1e-9, f"{name} is {fig.get_figwidth():.2f} in wide"
    assert style.smallest_text_px(fig) >= style.MIN_TEXT_PX, \
        f"{name}: its smallest text is {style.smallest_text_px(fig):.1f} px on a phone"
    found = texts(fig)
    page = fig.bbox
    for text, box in found:  # nothing cut off at the figure's edge (the notebook's tight crop would widen it)
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1, f"{name}: {text.get_text()!r} sticks out sideways"
    for index, (first, one) in enumerate(found):
        for second, other in found[index + 1:]:
            assert not one.overlaps(other), f"{name}: {first.get_text()!r} overlaps {second.get_text()!r}"
    plt.close(fig)
