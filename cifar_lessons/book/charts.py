"""The book-level summary charts: every chapter's accuracy, gains and costs, chapter 11's ablations and budgets."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from .. import style

style.use()


# Colours readable on a white page and on a dark one (the site's light and dark schemes).
NEUTRAL_TEXT = style.INK
SEED_COLOR = "#3f7fd8"
MILESTONE_COLOR = "#d9730d"


def chapter_accuracies(labels, accuracies, milestones=None, width_inches: float = style.COLUMN_WIDTH):
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
             "xtick.color": NEUTRAL_TEXT, "ytick.color": NEUTRAL_TEXT}
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
                       label="milestone", zorder=2)
        ax.set_yticks(positions, [textwrap.fill(label, 22) for label in labels])  # a long title takes two lines
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
                        textcoords="offset points", ha="right" if value >= 0 else "left", va="center", color="white")
            continue
        end = value + sign * (error or 0.0)  # the label clears the error bar
        ax.annotate(label_format.format(value), (end, y), xytext=(3 * sign, 0), textcoords="offset points",
                    ha="left" if value >= 0 else "right", va="center", color=NEUTRAL_TEXT)
    ax.axvline(0, color=NEUTRAL_TEXT, linewidth=0.8)
    ax.set_xlabel(xlabel)
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
    fig, axes = plt.subplots(1, 3, figsize=(style.COLUMN_WIDTH, 0.48 * len(labels) + 1.4), sharey=True,
                             layout="constrained")
    panels = (
        (axes[0], [None if g is None else 100 * g for g in gains], "gain over the\nprevious\nchapter (points)"),
        (axes[1], list(minutes), "main run's\nwall time\n(min)"),
        (axes[2], [None if g is None else 100 * g for g in gaps], "train minus\nvalidation\ngap (points)"),
    )
    errors = [None] * len(labels) if gain_errors is None else [None if e is None else 100 * e for e in gain_errors]
    for ax, values, xlabel in panels:
        spans = errors if ax is axes[0] else [None] * len(values)
        _signed_bars(ax, positions, values, xlabel, "{:.1f}", spans, margin=0.35)
    rows = [i for i, (g, e) in enumerate(zip(gains, errors)) if g is not None and e is not None]
    if rows:
        axes[0].errorbar([100 * gains[i] for i in rows], positions[rows], xerr=[errors[i] for i in rows],
                         fmt="none", ecolor=NEUTRAL_TEXT, elinewidth=1.2, capsize=3)
    axes[0].set_yticks(positions, [textwrap.fill(label, 15) for label in labels])  # two short lines, wider panels
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
        ax.annotate(f"{mean:.1f}%", (budget + 0.45, mean), va="center", color=NEUTRAL_TEXT)
    for label, accuracy in lines.items():
        ax.axhline(100 * accuracy, color=MILESTONE_COLOR, linestyle="--", linewidth=1)
        ax.annotate(label, (1.0, 100 * accuracy), xycoords=("axes fraction", "data"), xytext=(-2, 3),
                    textcoords="offset points", ha="right", color=MILESTONE_COLOR)
    if race_epochs is not None:
        ax.axvline(race_epochs, color=NEUTRAL_TEXT, linestyle=":", linewidth=1)
        ax.annotate("the race's budget", (race_epochs, 0.98), xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", va="top", color=NEUTRAL_TEXT)
    ax.set_xticks(np.unique(epochs))
    ax.set_xlim(epochs.min() - 1, epochs.max() + 2.5)
    ax.set_ylim(top=max([*points, *(100 * value for value in lines.values())]) + 0.5)  # room for the labels
    ax.set_xlabel("epochs (the schedule stretched to fit)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    return fig
