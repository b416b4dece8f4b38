"""One Matplotlib style for every figure of the book, sized for the site's text column.

Figures are at most ``COLUMN_WIDTH`` inches wide at ``DPI`` dots per inch, so a figure is shown
at (nearly) its natural size in the site's content column and a 10-point label stays about 11-13
pixels tall there; in a notebook they are drawn at twice that resolution ("retina"), so they stay
sharp on HiDPI screens and when zoomed. Figures are dark grey ink on white paper: one grey cannot
reach a 4.5:1 contrast on both a white and a dark page, so in the site's dark scheme a figure is a
white card (the site's stylesheet rounds its corners). ``plots`` and ``charts`` apply the style when
imported; ``use()`` applies it anywhere else (Chapter 1).
"""

from __future__ import annotations

import matplotlib as mpl

# Width of the site's content column in inches at DPI: about 700 pixels.
COLUMN_WIDTH = 7.0
DPI = 100

# Text, ticks and spines: 8.4:1 against the white paper (WCAG asks 4.5:1 for text).
INK = "#4d4d4d"
PAPER = "#ffffff"

RC = {
    "figure.figsize": (COLUMN_WIDTH, 3.6),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": PAPER,
    "figure.edgecolor": PAPER,
    "axes.facecolor": PAPER,
    "savefig.facecolor": PAPER,
    "savefig.transparent": False,
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
    """Apply the book's figure style to Matplotlib's global settings, and in a notebook draw figures at twice
    their displayed resolution (Chapter 1)."""
    mpl.rcParams.update(RC)
    try:
        from IPython import get_ipython  # lazy and optional: only a notebook needs it (the book extra)
    except ImportError:  # plain Python: no notebook to draw into
        return
    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats  # lazy: in a notebook only

        set_matplotlib_formats("retina")
