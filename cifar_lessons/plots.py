"""Matplotlib figures used across the book. Each function returns its Figure.

Importing this module applies the book's figure style (``cifar_lessons.style``): figures sized for
the site's text column, dark grey ink on white paper (a white card in the site's dark scheme).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from . import style

style.use()


def sample_grid(images, labels, class_names, per_class: int = 8, seed: int = 0):
    """A grid of random training images, one column per class (Chapter 1).

    Ten columns across the text column give each 32-pixel image about 70 pixels on the page, so the
    pixels themselves show.
    """
    rng = np.random.default_rng(seed)
    cell = style.COLUMN_WIDTH / len(class_names)
    fig, axes = plt.subplots(per_class, len(class_names), figsize=(style.COLUMN_WIDTH, cell * per_class + 0.3),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for column, name in enumerate(class_names):
        picks = rng.choice(np.flatnonzero(labels == column), per_class, replace=False)
        for row, index in enumerate(picks):
            axes[row, column].imshow(images[index], interpolation="nearest")  # the real pixels, and a small PNG
            axes[row, column].axis("off")
        axes[0, column].set_title(name, fontsize=9)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=1 - 0.3 / (cell * per_class + 0.3))
    return fig


def class_balance(y_train, y_test, class_names):
    """Images per class in the train and test sets (Chapter 1)."""
    positions = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.3))
    for offset, labels, name in ((-0.2, y_train, "train"), (0.2, y_test, "test")):
        ax.bar(positions + offset, np.bincount(labels, minlength=len(class_names)), width=0.4, label=name)
    ax.set_xticks(positions, class_names, rotation=30)
    ax.set_ylabel("images")
    ax.set_title("Class balance")
    ax.set_ylim(0, 1.3 * np.bincount(y_train).max())  # room for the legend above the bars
    ax.legend(loc="upper center", ncols=2)
    fig.tight_layout()
    return fig


def pixel_histograms(images):
    """Distribution of pixel values per RGB channel (Chapter 1)."""
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.3))
    for channel, color in enumerate(("red", "green", "blue")):
        ax.hist(images[..., channel].ravel(), bins=64, range=(0, 255), color=color, alpha=0.4, label=color)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("count")
    ax.set_title("Pixel values per channel")
    ax.legend()
    fig.tight_layout()
    return fig


def training_curves(history: dict, title: str = "", compare: dict | None = None, compare_label: str = "",
                    kept_epoch: int | None = None, mark_drops: bool = True):
    """Train vs validation loss and accuracy per epoch, optionally against another run (Chapter 1).

    Learning-rate drops (Chapter 7) are marked by dashed vertical lines, before the first epoch
    trained at the lower rate; ``kept_epoch`` (Chapter 8) is marked by a star on the validation curves.
    """
    from .ladder import learning_rate_drops

    drops = learning_rate_drops(history) if mark_drops and history.get("learning_rate") else []
    fig, axes = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 3.2), layout="constrained")
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
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8,
               frameon=False)
    fig.suptitle(title)
    return fig


def train_validation_gap(histories: dict, title: str = "Train minus validation accuracy"):
    """Per epoch, training accuracy minus validation accuracy for each labelled run (Chapters 2 and 4).

    The training accuracy is averaged over an epoch while the weights change (and, with augmentation,
    on altered images); the validation accuracy is measured after the epoch.
    """
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.3))
    for label, history in histories.items():
        gap = 100 * (np.asarray(history["accuracy"]) - np.asarray(history["val_accuracy"]))
        ax.plot(history["epoch"], gap, marker=".", label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gap (percentage points)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def learning_rate(history: dict, compare: dict | None = None, compare_label: str = ""):
    """Learning rate per epoch, on a log scale, optionally against another run (Chapter 7)."""
    fig, ax = plt.subplots(figsize=(6, 3))
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
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lr_sweep(sweep: dict):
    """Training loss and validation accuracy per epoch of each sweep run, one column per learning rate (Chapter 5)."""
    rates = sorted({run["learning_rate"] for run in sweep["runs"]})
    fig, axes = plt.subplots(2, len(rates), figsize=(style.COLUMN_WIDTH, 4.9), sharey="row", squeeze=False,
                             layout="constrained")
    for column, rate in enumerate(rates):
        for run in sweep["runs"]:
            if run["learning_rate"] != rate:
                continue
            history = run["history"]
            line = {"color": "tab:blue" if run["batch_norm"] else "tab:orange", "marker": "."}
            label = "with batch norm" if run["batch_norm"] else "without"
            losses = [np.nan if value is None else value for value in history["loss"]]
            axes[0, column].plot(history["epoch"], losses, label=label, **line)
            axes[1, column].plot(history["epoch"], [100 * v for v in history["val_accuracy"]], label=label, **line)
        axes[0, column].set_title(f"learning rate {rate:g}", fontsize=10)
        axes[1, column].axhline(10, color="grey", linestyle=":", linewidth=0.8)
        axes[1, column].set_xlabel("epoch")
        for ax in axes[:, column]:
            ax.grid(alpha=0.3)
            ax.set_xticks(history["epoch"])
    axes[0, 0].set_yscale("log")  # a diverging run's loss spikes by orders of magnitude
    axes[0, 0].set_ylabel("training loss (log scale)")
    axes[1, 0].set_ylabel("validation accuracy (%)")
    axes[1, 0].set_ylim(0, 100)
    # One legend below the panels, where it covers no curve.
    fig.legend(*axes[0, -1].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8,
               frameon=False)
    fig.suptitle(f"Learning-rate sweep: {sweep['subset']:,} training images, {sweep['epochs']} epochs per run")
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
    axes[0, 0].set_title("original", fontsize=10)
    fig.tight_layout()
    return fig


def confusion(matrix, class_names, normalize: bool = True):
    """Confusion matrix as a heat map, rows true class, columns predicted (Chapter 9)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    values = matrix / matrix.sum(axis=1, keepdims=True) if normalize else matrix
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 6.3))
    ConfusionMatrixDisplay(values, display_labels=class_names).plot(
        ax=ax, cmap="Blues", values_format=".2f" if normalize else "d", colorbar=False, xticks_rotation=45)
    ax.set_title("Confusion matrix (fraction of each true class)")
    fig.tight_layout()
    return fig


def image_grid(images, titles, columns: int = 4, fontsize: int = 10):
    """Images with a caption each, large enough to read at page width, e.g. misclassified examples (Chapter 9)."""
    rows = int(np.ceil(len(images) / columns))
    width = min(style.COLUMN_WIDTH, columns * 1.75)
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * (width / columns + 0.6)), squeeze=False)
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image, title in zip(np.ravel(axes), images, titles):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=fontsize)
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
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(style.COLUMN_WIDTH, rows * 0.6 + 0.5), squeeze=False,
                             gridspec_kw={"wspace": 0.08, "width_ratios": [1, 1, 0.4] * per_row})
    for ax in np.ravel(axes):
        ax.axis("off")
    for index in range(count):
        row, column = divmod(index, per_row)
        kernel = kernels[..., index]
        axes[row, 3 * column].imshow(_symmetric(kernel), interpolation="nearest")
        axes[row, 3 * column].set_title(f"{index}", fontsize=7, loc="left")
        axes[row, 3 * column + 1].imshow(_symmetric(kernel.mean(axis=-1)), cmap="gray", vmin=0, vmax=1,
                                         interpolation="nearest")
    fig.suptitle("First-layer filters: colour (left) and brightness part (right), each on its own scale, grey = 0",
                 fontsize=10)
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


# Colours readable on a white page and on a dark one (the site's light and dark schemes).
NEUTRAL_TEXT = style.INK
SEED_COLOR = "#3f7fd8"
MILESTONE_COLOR = "#d9730d"


def chapter_accuracies(labels, accuracies, milestones=None, width_inches: float = 7.0):
    """Test accuracy of every chapter over its seeds: each seed's value as a dot, the mean with ± one
    standard deviation as an error bar, the milestone as a tick (Chapter 10).

    ``accuracies`` holds, per chapter, either one value or the values of each recorded seed (fractions).
    The x-axis covers only the range the values span.
    """
    values = [100 * np.atleast_1d(np.asarray(value, dtype=float)) for value in accuracies]
    marks = [None if m is None else 100 * m for m in (milestones or [None] * len(values))]
    means = [v.mean() for v in values]
    spreads = [v.std(ddof=1) if len(v) >= 2 else 0.0 for v in values]
    positions = np.arange(len(values))
    shown = np.concatenate(values + [np.asarray([m for m in marks if m is not None])])
    low = np.floor(min(shown.min(), min(m - s for m, s in zip(means, spreads))) - 1)
    high = np.ceil(max(shown.max(), max(m + s for m, s in zip(means, spreads))) + 1)
    style = {"text.color": NEUTRAL_TEXT, "axes.labelcolor": NEUTRAL_TEXT, "axes.edgecolor": NEUTRAL_TEXT,
             "xtick.color": NEUTRAL_TEXT, "ytick.color": NEUTRAL_TEXT, "font.size": 10,
             "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10}
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(width_inches, 0.42 * len(values) + 1.5), layout="constrained")
        spread_rows = [i for i, v in enumerate(values) if len(v) >= 2]
        if spread_rows:
            ax.errorbar([means[i] for i in spread_rows], positions[spread_rows],
                        xerr=[spreads[i] for i in spread_rows], fmt="o", color=SEED_COLOR, markersize=5.5,
                        capsize=5, elinewidth=2, capthick=2, label="mean ± 1 standard deviation", zorder=3)
        single_rows = [i for i, v in enumerate(values) if len(v) < 2]  # one seed: no spread to draw
        ax.plot([means[i] for i in single_rows], positions[single_rows], "o", color=SEED_COLOR, markersize=5.5,
                label="mean" if not spread_rows else None, zorder=3)
        # Seeds in a short ladder under the mean (seed order top-down), so equal values stay visible.
        seed_x = np.concatenate(values)
        seed_y = np.concatenate([p + 0.22 + 0.1 * np.arange(len(v)) for v, p in zip(values, positions)])
        ax.scatter(seed_x, seed_y, s=20, facecolors="none", edgecolors=SEED_COLOR, linewidths=1.2,
                   label="each seed", zorder=3)
        milestone_points = [(m, p) for m, p in zip(marks, positions) if m is not None]
        if milestone_points:
            ax.scatter(*zip(*milestone_points), marker="|", s=260, linewidths=2.5, color=MILESTONE_COLOR,
                       label="milestone (floor the tests check)", zorder=2)
        ax.set_yticks(positions, labels)
        ax.set_ylim(len(values) - 0.2, -0.6)  # chapter 1 at the top
        ax.set_xlim(low, high)
        ax.set_xlabel("test accuracy (%); n: seeds")
        ax.grid(axis="x", color=NEUTRAL_TEXT, alpha=0.3)
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        # The mean and seed count of each chapter, beside the plot where they cover nothing.
        right = ax.secondary_yaxis("right")
        right.set_yticks(positions, [f"{m:.1f} ± {s:.1f} (n={len(v)})" if len(v) >= 2 else f"{m:.1f} (n=1)"
                                     for m, s, v in zip(means, spreads, values)])
        right.tick_params(length=0)
        right.spines["right"].set_visible(False)
        handles, names = ax.get_legend_handles_labels()
        order = sorted(range(len(names)), key=lambda i: not names[i].startswith("mean"))  # the mean first
        fig.legend([handles[i] for i in order], [names[i] for i in order], loc="outside upper center", ncols=3,
                   frameon=False, handletextpad=0.3, columnspacing=1.2)
    return fig


def feature_map_rows(images, maps, channels, title: str, captions=None):
    """One row per image: the image, then the chosen channels of its activations (Chapter 9).

    ``maps`` has shape (images, height, width, channels) and is cast to float32 (a mixed-precision
    model's activations are bfloat16, which matplotlib cannot scale). Each panel has its own colour
    scale, so a weak channel still shows its pattern.
    """
    maps = np.asarray(maps, dtype=np.float32)
    channels = list(channels)
    cell = min(1.05, style.COLUMN_WIDTH / (len(channels) + 1))  # inches per panel, the row fits the column
    fig, axes = plt.subplots(len(images), len(channels) + 1, squeeze=False,
                             figsize=((len(channels) + 1) * cell, len(images) * (cell + 0.07) + 0.5))
    for row, image in enumerate(images):
        axes[row, 0].imshow(image, interpolation="nearest")
        if captions is not None:
            axes[row, 0].set_title(captions[row], fontsize=8)
        for column, channel in enumerate(channels, start=1):
            axes[row, column].imshow(maps[row, ..., channel], cmap="viridis", interpolation="nearest")
            if row == 0:
                axes[row, column].set_title(f"ch {channel}", fontsize=8)
    for ax in np.ravel(axes):
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_activation_maps(images, overlays: dict, titles):
    """One column per image: the image, then each heat map of ``overlays`` laid over it (Chapter 9).

    ``overlays`` maps a row label (e.g. "predicted class") to heat maps scaled 0-1, one per image.
    """
    rows = 1 + len(overlays)
    cell = min(1.6, style.COLUMN_WIDTH / len(images))  # inches per panel, the row fits the column
    fig, axes = plt.subplots(rows, len(images), figsize=(len(images) * cell, rows * (cell + 0.15) + 0.3),
                             squeeze=False)
    for column, (image, title) in enumerate(zip(images, titles)):
        axes[0, column].imshow(image, interpolation="nearest")
        axes[0, column].set_title(title, fontsize=9)
        for row, heatmaps in enumerate(overlays.values(), start=1):
            axes[row, column].imshow(image, interpolation="nearest")
            # The heat maps are already upsampled to the image's pixels: draw them pixel for pixel.
            axes[row, column].imshow(np.asarray(heatmaps[column], dtype=np.float32), cmap="jet", alpha=0.45,
                                     vmin=0, vmax=1, interpolation="nearest")
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    for row, label in enumerate(overlays, start=1):
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
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
    fig, axes = plt.subplots(rows, columns, figsize=(style.COLUMN_WIDTH, 3.0 * rows), squeeze=False)
    for ax, (title, reliability) in zip(axes.flat, diagrams.items()):
        _reliability_bars(ax, reliability)
        ax.set(xlabel="confidence", ylabel="accuracy")
        ax.set_title(f"{title}\nECE {100 * reliability['ece']:.1f}%")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(diagrams):]:
        ax.set_visible(False)
    # One legend below the panels, where it covers no bar.
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def reliability_diagram(reliability: dict, title: str = "Reliability diagram"):
    """Accuracy against confidence per bin, beside how many predictions fall in each bin (Chapter 9).

    ``reliability`` is what ``analysis.reliability`` returns. Bars below the diagonal mean the model
    is more confident than it is accurate.
    """
    edges, counts = reliability["edges"], reliability["counts"]
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 3.4))
    _reliability_bars(left, reliability)
    left.set_xlabel("confidence (highest predicted probability)")
    left.set_ylabel("accuracy")
    left.set_title(f"{title} (ECE {100 * reliability['ece']:.1f}%)")
    left.legend(loc="upper left", fontsize=8)
    right.bar(centres, counts, width=width, edgecolor="black", color="tab:grey")
    right.set_yscale("log")
    right.set_xlim(0, 1)
    right.set_xlabel("confidence")
    right.set_ylabel("predictions (log scale)")
    right.set_title("Predictions per confidence bin")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _signed_bars(ax, positions, values, xlabel, label_format, errors=None, margin=0.3):
    """Horizontal bars, negative ones in the milestone colour, each labelled with its value (Chapters 10-11).

    A value of None gets no bar and no label; ``errors`` (None where unknown) moves a label past its error bar.
    """
    drawn = [0.0 if v is None else v for v in values]
    ax.barh(positions, drawn, color=[MILESTONE_COLOR if v < 0 else SEED_COLOR for v in drawn])
    longest = max(abs(v) for v in drawn) if drawn else 0.0
    for y, value, error in zip(positions, values, errors or [None] * len(values)):
        if value is None:
            continue
        sign = 1 if value >= 0 else -1
        if abs(value) > 0.6 * longest:  # a long bar carries its label inside, clear of the ticks and its error bar
            ax.annotate(label_format.format(value), (value - sign * (error or 0.0), y), xytext=(-3 * sign, 0),
                        textcoords="offset points", ha="right" if value >= 0 else "left", va="center", fontsize=8,
                        color="white")
            continue
        end = value + sign * (error or 0.0)  # the label clears the error bar
        ax.annotate(label_format.format(value), (end, y), xytext=(3 * sign, 0), textcoords="offset points",
                    ha="left" if value >= 0 else "right", va="center", fontsize=8, color=NEUTRAL_TEXT)
    ax.axvline(0, color=NEUTRAL_TEXT, linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=margin)
    ax.tick_params(axis="y", length=0)


def gains_and_costs(labels, gains, minutes, gaps, gain_errors=None):
    """Per chapter: accuracy gain over the previous chapter, wall time and train-validation gap (Chapter 10).

    ``gains`` may hold None for a chapter without a predecessor; ``gain_errors`` (optional, None where
    unknown) draws each gain's standard error as an error bar; ``gains``, ``gain_errors`` and ``gaps`` are
    fractions. Sized for the text column, in colours that read on light and dark pages.
    """
    positions = np.arange(len(labels))
    fig, axes = plt.subplots(1, 3, figsize=(style.COLUMN_WIDTH, 0.36 * len(labels) + 1.4), sharey=True,
                             layout="constrained")
    panels = (
        (axes[0], [None if g is None else 100 * g for g in gains], "gain over the\nprevious chapter (points)"),
        (axes[1], list(minutes), "main run's\nwall time (min)"),
        (axes[2], [None if g is None else 100 * g for g in gaps], "train - validation\ngap (points)"),
    )
    errors = [None] * len(labels) if gain_errors is None else [None if e is None else 100 * e for e in gain_errors]
    for ax, values, xlabel in panels:
        spans = errors if ax is axes[0] else [None] * len(values)
        _signed_bars(ax, positions, values, xlabel, "{:.1f}", spans, margin=0.35)
    rows = [i for i, (g, e) in enumerate(zip(gains, errors)) if g is not None and e is not None]
    if rows:
        axes[0].errorbar([100 * gains[i] for i in rows], positions[rows], xerr=[errors[i] for i in rows],
                         fmt="none", ecolor=NEUTRAL_TEXT, elinewidth=1.2, capsize=3)
    axes[0].set_yticks(positions, labels)
    axes[0].invert_yaxis()
    return fig


def ablation_chart(labels, val_changes, test_changes, val_bands=None, test_bands=None):
    """Per removed technique: the change in validation and test accuracy against the full recipe (Chapter 11).

    ``val_changes`` and ``test_changes`` are fractions (negative: the recipe lost accuracy without the
    technique, so the technique helped). ``val_bands`` and ``test_bands`` (optional, per row, None where
    there is none) draw each change's chance range as an error bar: a bar whose range crosses zero is
    within seed-to-seed noise.
    """
    positions = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 0.38 * len(labels) + 1.3), sharey=True,
                             layout="constrained")
    for ax, values, bands, xlabel in ((axes[0], val_changes, val_bands, "validation accuracy\nchange (points)"),
                                      (axes[1], test_changes, test_bands, "test accuracy\nchange (points)")):
        points = [100 * value for value in values]
        spans = [None if band is None else 100 * band for band in (bands or [None] * len(values))]
        _signed_bars(ax, positions, points, xlabel, "{:+.1f}", spans, margin=0.3)
        rows = [row for row, span in enumerate(spans) if span is not None]
        if rows:
            ax.errorbar([points[row] for row in rows], positions[rows], xerr=[spans[row] for row in rows],
                        fmt="none", ecolor=NEUTRAL_TEXT, elinewidth=1.2, capsize=3)
    axes[0].set_yticks(positions, [textwrap.fill(label, 28) for label in labels])  # a long label takes two lines
    axes[0].invert_yaxis()
    return fig


def budget_chart(epochs, test_accuracies, lines: dict, race_epochs: int | None = None):
    """Test accuracy of each run against its number of epochs, with horizontal reference lines (Chapter 11).

    ``epochs`` and ``test_accuracies`` (fractions) hold one entry per run; each budget's mean is marked
    with a bar across its dots. ``lines`` maps a label to an accuracy (the floor, the goal). ``race_epochs``
    marks the budget the race holds the recipe to.
    """
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.2), layout="constrained")
    epochs, points = np.asarray(epochs), 100 * np.asarray(test_accuracies)
    for budget in np.unique(epochs):
        runs = points[epochs == budget]
        spread = 0.15 * (np.arange(len(runs)) - (len(runs) - 1) / 2)  # runs of one budget side by side
        ax.scatter(budget + spread, runs, color=SEED_COLOR, zorder=3,
                   label="one run (seed)" if budget == epochs.min() else None)
        mean = runs.mean()
        ax.hlines(mean, budget - 0.4, budget + 0.4, color=SEED_COLOR, linewidth=2, zorder=2)
        ax.annotate(f"{mean:.1f}%", (budget + 0.45, mean), va="center", fontsize=9, color=NEUTRAL_TEXT)
    for label, accuracy in lines.items():
        ax.axhline(100 * accuracy, color=MILESTONE_COLOR, linestyle="--", linewidth=1)
        ax.annotate(label, (1.0, 100 * accuracy), xycoords=("axes fraction", "data"), xytext=(-2, 3),
                    textcoords="offset points", ha="right", fontsize=9, color=MILESTONE_COLOR)
    if race_epochs is not None:
        ax.axvline(race_epochs, color=NEUTRAL_TEXT, linestyle=":", linewidth=1)
        ax.annotate("the race's budget", (race_epochs, 0.98), xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", va="top", fontsize=9, color=NEUTRAL_TEXT)
    ax.set_xticks(np.unique(epochs))
    ax.set_xlim(epochs.min() - 1, epochs.max() + 2.5)
    ax.set_ylim(top=max([*points, *(100 * value for value in lines.values())]) + 0.5)  # room for the labels
    ax.set_xlabel("epochs (the schedule stretched to fit)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    return fig
