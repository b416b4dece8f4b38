"""Matplotlib figures used across the book. Each function returns its Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def sample_grid(images, labels, class_names, per_class: int = 8, seed: int = 0):
    """A grid of random training images, one row per class (Chapter 1)."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(class_names), per_class, figsize=(per_class * 0.9, len(class_names) * 0.95))
    for row, name in enumerate(class_names):
        picks = rng.choice(np.flatnonzero(labels == row), per_class, replace=False)
        for col, index in enumerate(picks):
            axes[row, col].imshow(images[index], interpolation="nearest")  # the real pixels, and a small PNG
            axes[row, col].axis("off")
        axes[row, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def class_balance(y_train, y_test, class_names):
    """Images per class in the train and test sets (Chapter 1)."""
    positions = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for offset, labels, name in ((-0.2, y_train, "train"), (0.2, y_test, "test")):
        ax.bar(positions + offset, np.bincount(labels, minlength=len(class_names)), width=0.4, label=name)
    ax.set_xticks(positions, class_names, rotation=30)
    ax.set_ylabel("images")
    ax.set_title("Class balance")
    ax.legend()
    fig.tight_layout()
    return fig


def pixel_histograms(images):
    """Distribution of pixel values per RGB channel (Chapter 1)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for channel, color in enumerate(("red", "green", "blue")):
        ax.hist(images[..., channel].ravel(), bins=64, range=(0, 255), color=color, alpha=0.4, label=color)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("count")
    ax.set_title("Pixel values per channel")
    ax.legend()
    fig.tight_layout()
    return fig


def _learning_rate_drops(history: dict) -> list[int]:
    """Epochs trained at a lower learning rate than the epoch before (as report.learning_rate_drops)."""
    rates = history.get("learning_rate") or []
    return [history["epoch"][i] for i in range(1, len(rates)) if rates[i] < rates[i - 1] * (1 - 1e-6)]


def training_curves(history: dict, title: str = "", compare: dict | None = None, compare_label: str = "",
                    kept_epoch: int | None = None, mark_drops: bool = True):
    """Train vs validation loss and accuracy per epoch, optionally against another run (Chapter 1).

    Learning-rate drops (Chapter 7) are marked by dashed vertical lines, before the first epoch
    trained at the lower rate; ``kept_epoch`` (Chapter 8) is marked by a star on the validation curves.
    """
    drops = _learning_rate_drops(history) if mark_drops else []
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
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
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def train_validation_gap(histories: dict, title: str = "Train minus validation accuracy"):
    """Per epoch, training accuracy minus validation accuracy for each labelled run (Chapters 2 and 4).

    The training accuracy is averaged over an epoch while the weights change (and, with augmentation,
    on altered images); the validation accuracy is measured after the epoch.
    """
    fig, ax = plt.subplots(figsize=(7, 3.6))
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
    fig, axes = plt.subplots(2, len(rates), figsize=(2.9 * len(rates), 5.2), sharey="row", squeeze=False)
    for column, rate in enumerate(rates):
        for run in sweep["runs"]:
            if run["learning_rate"] != rate:
                continue
            history = run["history"]
            style = {"color": "tab:blue" if run["batch_norm"] else "tab:orange", "marker": "."}
            label = "with batch norm" if run["batch_norm"] else "without"
            losses = [np.nan if value is None else value for value in history["loss"]]
            axes[0, column].plot(history["epoch"], losses, label=label, **style)
            axes[1, column].plot(history["epoch"], [100 * v for v in history["val_accuracy"]], label=label, **style)
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
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(f"Learning-rate sweep: {sweep['subset']:,} training images, {sweep['epochs']} epochs per run")
    fig.tight_layout()
    return fig


def augmented_samples(augment, images, copies: int = 6, seed: int = 0):
    """Each row: an image, then random augmentations of it (Chapter 4)."""
    fig, axes = plt.subplots(len(images), copies + 1, figsize=((copies + 1) * 1.1, len(images) * 1.1))
    for row, image in enumerate(images):
        axes[row, 0].imshow(image, interpolation="nearest")
        batch = np.repeat(image[None].astype("float32"), copies, axis=0)
        augmented = np.asarray(augment(batch, training=True))
        for col in range(copies):
            axes[row, col + 1].imshow(np.clip(augmented[col], 0, 255).astype("uint8"), interpolation="nearest")
        for ax in axes[row]:
            ax.axis("off")
    axes[0, 0].set_title("original", fontsize=9)
    fig.tight_layout()
    return fig


def confusion(matrix, class_names, normalize: bool = True):
    """Confusion matrix as a heat map, rows true class, columns predicted (Chapter 9)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    values = matrix / matrix.sum(axis=1, keepdims=True) if normalize else matrix
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ConfusionMatrixDisplay(values, display_labels=class_names).plot(
        ax=ax, cmap="Blues", values_format=".2f" if normalize else "d", colorbar=False, xticks_rotation=45)
    ax.set_title("Confusion matrix (fraction of each true class)")
    fig.tight_layout()
    return fig


def image_grid(images, titles, columns: int = 8):
    """Images with a caption each, e.g. misclassified examples (Chapter 9)."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image, title in zip(np.ravel(axes), images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def filters(kernels):
    """First-layer 3x3 RGB filters, each rescaled to 0-1 for display (Chapter 9)."""
    count = kernels.shape[-1]
    columns = 8
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows))
    for index, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if index < count:
            kernel = kernels[..., index]
            ax.imshow((kernel - kernel.min()) / (np.ptp(kernel) or 1), interpolation="nearest")
    fig.suptitle("First-layer filters")
    fig.tight_layout()
    return fig


def feature_maps(maps, title: str, count: int = 16):
    """The first ``count`` channels of one image's activations (Chapter 9)."""
    columns = 8
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.15))
    for index, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if index < min(count, maps.shape[-1]):
            ax.imshow(maps[..., index], cmap="viridis")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def chapter_accuracies(labels, accuracies, milestones=None):
    """Test accuracy of every chapter as bars, with milestones as markers (Chapter 10)."""
    fig, ax = plt.subplots(figsize=(9, 4))
    positions = np.arange(len(labels))
    bars = ax.bar(positions, [100 * a for a in accuracies], color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    if milestones:
        marks = [(p, 100 * m) for p, m in zip(positions, milestones) if m is not None]
        if marks:
            ax.scatter(*zip(*marks), marker="_", s=600, color="tab:red", label="milestone", zorder=3)
            ax.legend(loc="lower right")
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Test accuracy by chapter")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
