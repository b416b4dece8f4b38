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
    lambda: plots.lr_sweep({"subset": 1000, "epochs": 3, "runs": [
        {"learning_rate": rate, "batch_norm": bn, "history": {"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2],
                                                              "val_accuracy": [0.3, 0.4, 0.5]}}
        for rate in (1e-3, 1e-2) for bn in (False, True)]}),
], ids=["training_curves", "class_balance", "lr_sweep"])
def test_legends_cover_no_data(figure):
    fig = figure()
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, "the figure has no legend"
    for legend in legends:
        for ax in fig.axes:
            assert not covered(legend, ax), f"a legend covers data in the panel {ax.get_title()!r}"
    plt.close(fig)
