"""One Matplotlib style for every figure of the book, sized for the site's text column.

Figures are at most ``COLUMN_WIDTH`` inches wide at ``DPI`` dots per inch, so a figure is shown
at (nearly) its natural size in the site's content column and a 10-point label stays about 11-13
pixels tall there. Backgrounds are transparent and text, ticks and spines a mid grey, so the same
PNG reads on the light and on the dark colour scheme of the site. ``plots`` applies the style
when it is imported; ``use()`` applies it anywhere else (Chapter 1).
"""

from __future__ import annotations

import matplotlib as mpl

# Width of the site's content column in inches at DPI: about 700 pixels.
COLUMN_WIDTH = 7.0
DPI = 100

# A grey with enough contrast on white and on Material's dark "slate" background.
INK = "#7c7c7c"

RC = {
    "figure.figsize": (COLUMN_WIDTH, 3.6),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": (1, 1, 1, 0),
    "figure.edgecolor": (1, 1, 1, 0),
    "axes.facecolor": (1, 1, 1, 0),
    "savefig.facecolor": (1, 1, 1, 0),
    "savefig.transparent": True,
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "legend.framealpha": 0.0,
    "legend.edgecolor": INK,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "grid.color": INK,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use() -> None:
    """Apply the book's figure style to Matplotlib's global settings (Chapter 1)."""
    mpl.rcParams.update(RC)
