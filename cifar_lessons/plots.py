"""Matplotlib figures used across the book. Each function returns its Figure.

Importing this module applies the book's figure style (``cifar_lessons.style``): figures sized for
the site's text column, dark grey ink on white paper (a white card in the site's dark scheme).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from sklearn.metrics import ConfusionMatrixDisplay

from . import style
from .results import learning_rate_drops

style.use()


def sample_grid(images, labels, class_names, per_class: int = 5, seed: int = 0, cell: float = 0.5):
    """A grid of random training images, one row per class, its name on the left (Chapter 1).

    Each 32-pixel image gets ``cell`` inches (50 pixels), on a laptop and on a phone alike: the
    figure is narrow enough that a phone does not shrink it, so the pixels themselves show.
    """
    rng = np.random.default_rng(seed)
    label_width = 0.95  # inches for the class names
    cell = min(cell, (style.COLUMN_WIDTH - label_width) / per_class)
    width, height = label_width + cell * per_class, cell * len(class_names)
    fig, axes = plt.subplots(len(class_names), per_class, figsize=(width, height), squeeze=False,
                             gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for row, name in enumerate(class_names):
        picks = rng.choice(np.flatnonzero(labels == row), per_class, replace=False)
        for column, index in enumerate(picks):
            axes[row, column].imshow(images[index], interpolation="nearest")  # the real pixels, and a small PNG
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            for spine in axes[row, column].spines.values():
                spine.set_visible(False)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=label_width / width, right=1, bottom=0, top=1)
    return fig


def class_balance(y_train, y_test, class_names):
    """Images per class in the train and test sets (Chapter 1)."""
    positions = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 4.2), layout="constrained")
    for offset, labels, name in ((-0.2, y_train, "train"), (0.2, y_test, "test")):
        ax.barh(positions + offset, np.bincount(labels, minlength=len(class_names)), height=0.4, label=name)
    ax.set_yticks(positions, class_names)
    ax.invert_yaxis()  # class 0 at the top
    ax.set_xlabel("images")
    ax.set_title("Class balance")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    return fig


def pixel_histograms(images):
    """Distribution of pixel values per RGB channel (Chapter 1)."""
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.5), layout="constrained")
    for channel, color in enumerate(("red", "green", "blue")):
        ax.hist(images[..., channel].ravel(), bins=64, range=(0, 255), color=color, alpha=0.4, label=color)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("count")
    ax.set_title("Pixel values per channel")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, frameon=False)  # covers no bar
    return fig


def training_curves(history: dict, title: str = "", compare: dict | None = None, compare_label: str = "",
                    kept_epoch: int | None = None, mark_drops: bool = True):
    """Train vs validation loss and accuracy per epoch, optionally against another run (Chapter 1).

    Learning-rate drops (Chapter 7) are marked by dashed vertical lines, before the first epoch
    trained at the lower rate; ``kept_epoch`` (Chapter 8) is marked by a star on the validation curves.
    """
    drops = learning_rate_drops(history) if mark_drops and history.get("learning_rate") else []
    fig, axes = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 3.4), layout="constrained")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        if compare:
            ax.plot(compare["epoch"], compare[f"val_{metric}"], color="grey", linestyle=":",
                    label=f"validation ({compare_label})")
        ax.plot(history["epoch"], history[metric], marker=".", label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker=".", label="validation")
        for index, epoch in enumerate(drops):
            ax.axvline(epoch - 0.5, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.7,
                       label="learning rate lowered" if index == 0 else None)
        if kept_epoch is not None:
            ax.plot(kept_epoch, history[f"val_{metric}"][kept_epoch - 1], marker="*", markersize=14,
                    color="tab:green", linestyle="none", zorder=3, label=f"kept weights (epoch {kept_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    # One legend for both panels, below them, where it covers no curve.
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(title)
    return fig


def train_validation_gap(histories: dict, title: str = "Train minus validation accuracy"):
    """Per epoch, training accuracy minus validation accuracy for each labelled run (Chapters 2 and 4).

    The training accuracy is averaged over an epoch while the weights change (and, with augmentation,
    on altered images); the validation accuracy is measured after the epoch.
    """
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.3 + 0.2 * len(histories)), layout="constrained")
    for label, history in histories.items():
        gap = 100 * (np.asarray(history["accuracy"]) - np.asarray(history["val_accuracy"]))
        ax.plot(history["epoch"], gap, marker=".", label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gap (percentage points)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # One legend below the plot, one run a line: the labels may be long, and it covers no curve.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=1, frameon=False)
    return fig


def learning_rate(history: dict, compare: dict | None = None, compare_label: str = ""):
    """Learning rate per epoch, on a log scale, optionally against another run (Chapter 7)."""
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3))
    if compare:
        ax.step(compare["epoch"], compare["learning_rate"], where="mid", color="grey", linestyle=":",
                label=compare_label)
    ax.step(history["epoch"], history["learning_rate"], where="mid", marker=".", label="this chapter")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate each epoch trained with")
    ax.grid(alpha=0.3)
    if compare:
        ax.legend()
    fig.tight_layout()
    return fig


def lr_sweep(sweep: dict):
    """Training loss and validation accuracy per epoch of each sweep run, one row per learning rate (Chapter 5)."""
    rates = sorted({run["learning_rate"] for run in sweep["runs"]})
    fig, axes = plt.subplots(len(rates), 2, figsize=(style.COLUMN_WIDTH, 1.45 * len(rates) + 1.3), sharex=True,
                             sharey="col", squeeze=False, layout="constrained")
    for row, rate in enumerate(rates):
        for run in sweep["runs"]:
            if run["learning_rate"] != rate:
                continue
            history = run["history"]
            line = {"color": "tab:blue" if run["batch_norm"] else "tab:orange", "marker": "."}
            label = "with batch norm" if run["batch_norm"] else "without"
            losses = [np.nan if value is None else value for value in history["loss"]]
            axes[row, 0].plot(history["epoch"], losses, label=label, **line)
            axes[row, 1].plot(history["epoch"], [100 * v for v in history["val_accuracy"]], label=label, **line)
        axes[row, 0].set_ylabel(f"rate {rate:g}")
        axes[row, 1].axhline(10, color="grey", linestyle=":", linewidth=0.8)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.set_xticks(history["epoch"])
    axes[0, 0].set_yscale("log")  # a diverging run's loss spikes by orders of magnitude
    axes[0, 0].yaxis.set_minor_formatter(NullFormatter())  # labelled decades only: minor labels crowd a short panel
    axes[0, 0].set_title("training loss (log scale)")
    axes[0, 1].set_title("validation accuracy (%)")
    axes[0, 1].set_ylim(0, 100)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    # One legend below the panels, where it covers no curve.
    fig.legend(*axes[0, -1].get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"Learning-rate sweep: {sweep['subset']:,} training images,\n{sweep['epochs']} epochs per run")
    return fig


def augmented_samples(augment, images, copies: int = 6, seed: int = 0):
    """Each row: an image, then random augmentations of it (Chapter 4)."""
    fig, axes = plt.subplots(len(images), copies + 1,
                             figsize=(style.COLUMN_WIDTH, len(images) * style.COLUMN_WIDTH / (copies + 1)))
    for row, image in enumerate(images):
        axes[row, 0].imshow(image, interpolation="nearest")
        batch = np.repeat(image[None].astype("float32"), copies, axis=0)
        augmented = np.asarray(augment(batch, training=True))
        for col in range(copies):
            axes[row, col + 1].imshow(np.clip(augmented[col], 0, 255).astype("uint8"), interpolation="nearest")
        for ax in axes[row]:
            ax.axis("off")
    axes[0, 0].set_title("original")
    fig.tight_layout()
    return fig


def confusion(matrix, class_names, normalize: bool = True):
    """Confusion matrix as a heat map, rows true class, columns predicted (Chapter 9)."""
    values = matrix / matrix.sum(axis=1, keepdims=True) if normalize else matrix
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 5.4))
    ConfusionMatrixDisplay(values, display_labels=class_names).plot(
        ax=ax, cmap="Blues", values_format=".2f" if normalize else "d", colorbar=False, xticks_rotation="vertical",
        text_kw={"fontsize": style.MIN_FONT_SIZE})
    ax.set_title("Fraction of each true class")
    fig.tight_layout()
    return fig


def image_grid(images, titles, columns: int = 4):
    """Images with a caption each, large enough to read at page width, e.g. misclassified examples (Chapter 9)."""
    rows = int(np.ceil(len(images) / columns))
    width = min(style.COLUMN_WIDTH, columns * 1.75)
    lines = max(str(title).count("\n") + 1 for title in titles)
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * (width / columns + 0.25 * lines + 0.1)),
                             squeeze=False)
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image, title in zip(np.ravel(axes), images, titles):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _symmetric(values):
    """Scale values to 0-1 with 0 at mid-grey, by their largest magnitude (Chapter 9)."""
    values = np.asarray(values, dtype=np.float32)
    peak = float(np.abs(values).max()) or 1.0
    return 0.5 + 0.5 * values / peak


def filters(kernels, per_row: int = 8):
    """First-layer RGB filters beside their brightness part, each scaled on its own with 0 at mid-grey (Chapter 9).

    Each pair: the filter as a colour image (a channel brighter than grey has a positive weight), then
    the mean of its three channels, the part that responds to brightness (white positive, black negative).
    """
    kernels = np.asarray(kernels, dtype=np.float32)
    count = kernels.shape[-1]
    rows = int(np.ceil(count / per_row))
    # Three columns per filter: colour, brightness and an empty gap that keeps the pairs apart.
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(style.COLUMN_WIDTH, rows * 0.62 + 0.75), squeeze=False,
                             gridspec_kw={"wspace": 0.08, "width_ratios": [1, 1, 0.4] * per_row})
    for ax in np.ravel(axes):
        ax.axis("off")
    for index in range(count):
        row, column = divmod(index, per_row)
        kernel = kernels[..., index]
        axes[row, 3 * column].imshow(_symmetric(kernel), interpolation="nearest")
        axes[row, 3 * column].set_title(f"{index}", loc="left", pad=2)
        axes[row, 3 * column + 1].imshow(_symmetric(kernel.mean(axis=-1)), cmap="gray", vmin=0, vmax=1,
                                         interpolation="nearest")
    height = fig.get_figheight()
    fig.suptitle("First-layer filters: colour (left) and brightness part (right),\n"
                 "each on its own scale, grey = 0", fontsize=style.MIN_FONT_SIZE + 0.5, y=1 - 0.05 / height, va="top")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=1 - 0.62 / height, hspace=0.45)
    return fig


def feature_maps(maps, title: str, count: int = 16):
    """The first ``count`` channels of one image's activations, cast to float32 for matplotlib (Chapter 9)."""
    maps = np.asarray(maps, dtype=np.float32)  # matplotlib cannot scale bfloat16 arrays
    columns = 8
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(style.COLUMN_WIDTH, rows * style.COLUMN_WIDTH / columns + 0.45),
                             squeeze=False)
    for index, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if index < min(count, maps.shape[-1]):
            ax.imshow(maps[..., index], cmap="viridis")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_map_rows(images, maps, channels, title: str, captions=None):
    """One row per image: its class (``captions``) on the left, the image, then the chosen channels of its
    activations (Chapter 9).

    ``maps`` has shape (images, height, width, channels) and is cast to float32 (a mixed-precision
    model's activations are bfloat16, which matplotlib cannot scale). Each panel has its own colour
    scale, so a weak channel still shows its pattern.
    """
    maps = np.asarray(maps, dtype=np.float32)
    channels = list(channels)
    label_width = 0.95 if captions is not None else 0.0  # inches for the class names
    cell = min(1.05, (style.COLUMN_WIDTH - label_width) / (len(channels) + 1))  # the row fits the column
    title = "\n".join(textwrap.fill(line, 52) for line in title.splitlines())  # keeps the caller's line breaks
    top = 0.3 + 0.22 * (title.count("\n") + 1)  # inches above the panels: the channels' titles, then the title
    width, height = label_width + (len(channels) + 1) * cell, len(images) * (cell + 0.05) + top
    fig, axes = plt.subplots(len(images), len(channels) + 1, squeeze=False, figsize=(width, height),
                             gridspec_kw={"wspace": 0.06, "hspace": 0.06})
    for row, image in enumerate(images):
        axes[row, 0].imshow(image, interpolation="nearest")
        if captions is not None:
            axes[row, 0].set_ylabel(captions[row], rotation=0, ha="right", va="center")
        for column, channel in enumerate(channels, start=1):
            axes[row, column].imshow(maps[row, ..., channel], cmap="viridis", interpolation="nearest")
            if row == 0:
                axes[row, column].set_title(f"ch {channel}")
    for ax in np.ravel(axes):  # no ticks or frame, but the row's label stays
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title, y=1 - 0.03 / height, va="top")
    fig.subplots_adjust(left=label_width / width, right=1, bottom=0.01, top=1 - top / height)
    return fig


def class_activation_maps(images, overlays: dict, titles):
    """One column per image: the image, then each heat map of ``overlays`` laid over it (Chapter 9).

    ``overlays`` maps a row label (e.g. "predicted class") to heat maps scaled 0-1, one per image.
    """
    rows = 1 + len(overlays)
    label_width = 0.5 if overlays else 0.0  # inches for the rows' labels (two short lines, turned)
    cell = min(1.6, (style.COLUMN_WIDTH - label_width) / len(images))  # the row and its label fit the column
    top = 0.1 + 0.19 * max(str(title).count("\n") + 1 for title in titles)  # inches for the titles
    width, height = label_width + len(images) * cell, rows * cell + top + 0.05
    fig, axes = plt.subplots(rows, len(images), figsize=(width, height), squeeze=False,
                             gridspec_kw={"wspace": 0.08, "hspace": 0.08})
    for column, (image, title) in enumerate(zip(images, titles)):
        axes[0, column].imshow(image, interpolation="nearest")
        axes[0, column].set_title(title, fontsize=style.MIN_FONT_SIZE)  # the smallest size: a narrow panel
        for row, heatmaps in enumerate(overlays.values(), start=1):
            axes[row, column].imshow(image, interpolation="nearest")
            # The heat maps are already upsampled to the image's pixels: draw them pixel for pixel.
            axes[row, column].imshow(np.asarray(heatmaps[column], dtype=np.float32), cmap="jet", alpha=0.45,
                                     vmin=0, vmax=1, interpolation="nearest")
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    for row, label in enumerate(overlays, start=1):
        axes[row, 0].set_ylabel(label)
    fig.subplots_adjust(left=label_width / width, right=1, bottom=0.05 / height, top=1 - top / height)
    return fig


def _reliability_bars(ax, reliability: dict) -> None:
    """Each bin's accuracy as a bar, the gap to its mean confidence hatched on top, and the diagonal."""
    edges, filled = reliability["edges"], reliability["filled"]
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    ax.bar(centres[filled], reliability["accuracy"], width=width, edgecolor="black", color="tab:blue",
           label="accuracy in the bin")
    ax.bar(centres[filled], reliability["confidence"] - reliability["accuracy"], bottom=reliability["accuracy"],
           width=width, edgecolor="tab:red", color="tab:red", alpha=0.3, hatch="//",
           label="gap to the mean confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1))


def reliability_grid(diagrams: dict, columns: int = 2):
    """Several reliability diagrams side by side, accuracy against confidence only (Chapter 9).

    ``diagrams`` maps a panel title to what ``analysis.reliability`` returns; each title gets its ECE.
    """
    rows = -(-len(diagrams) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(style.COLUMN_WIDTH, 3.0 * rows), squeeze=False, sharex=True,
                             sharey=True)
    for ax, (title, reliability) in zip(axes.flat, diagrams.items()):
        _reliability_bars(ax, reliability)
        ax.set(xlabel="confidence", ylabel="accuracy")
        ax.label_outer()  # the axes' labels once, on the left and at the bottom
        ax.set_title(f"{title}\nECE {100 * reliability['ece']:.1f}%")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(diagrams):]:
        ax.set_visible(False)
    # One legend below the panels, where it covers no bar.
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def reliability_diagram(reliability: dict, title: str = "Reliability diagram"):
    """Accuracy against confidence per bin, beside how many predictions fall in each bin (Chapter 9).

    ``reliability`` is what ``analysis.reliability`` returns. Bars below the diagonal mean the model
    is more confident than it is accurate.
    """
    edges, counts = reliability["edges"], reliability["counts"]
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 3.9), layout="constrained")
    _reliability_bars(left, reliability)
    left.set_xlabel("confidence")
    left.set_ylabel("accuracy")
    left.set_title("Accuracy per bin")
    fig.suptitle(f"{title} (ECE {100 * reliability['ece']:.1f}%)")
    # One legend below the panels, where it covers no bar.
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    right.bar(centres, counts, width=width, edgecolor="black", color="tab:grey")
    right.set_yscale("log")
    right.set_xlim(0, 1)
    right.set_xlabel("confidence")
    right.set_ylabel("predictions (log scale)")
    right.set_title("Predictions per bin")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig
