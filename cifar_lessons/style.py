"""One Matplotlib style for every figure of the book, sized so that its labels read on a phone.

A phone 412 pixels wide gives the site's text column ``PHONE_COLUMN_PX`` (365) pixels, and a figure
wider than that is shrunk to fit, its text with it. So figures are at most ``COLUMN_WIDTH`` inches
(500 pixels at ``DPI``) wide and no text is smaller than ``MIN_FONT_SIZE`` points (about 14 pixels):
shrunk to 365 pixels, the smallest label is still 10 pixels tall (``smallest_text_px``). On a laptop
the same figure is shown at its natural size, centred in a column of about 690 pixels. In a notebook
figures are drawn at twice that resolution ("retina"), so they stay sharp on HiDPI screens and when
zoomed. Figures are dark grey ink on white paper: one grey cannot reach a 4.5:1 contrast on both a
white and a dark page, so in the site's dark scheme a figure is a white card (the site's stylesheet
rounds its corners). ``plots`` and ``charts`` apply the style when imported; ``use()`` applies it
anywhere else (Chapter 1).
"""

from __future__ import annotations

import matplotlib as mpl

# The widest a figure is drawn, in inches at DPI (500 pixels), and its smallest text, in points.
COLUMN_WIDTH = 5.0
DPI = 100
MIN_FONT_SIZE = 10
# The site's text column on a 412-pixel phone, and the smallest text it should show.
PHONE_COLUMN_PX = 365
MIN_TEXT_PX = 10

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
    "savefig.pad_inches": 0.02,  # a notebook crops a figure to its ink: keep it within COLUMN_WIDTH
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


def smallest_text_px(figure) -> float:
    """The height in pixels of a figure's smallest visible text when the page shrinks it to a phone's column."""
    sizes = [text.get_fontsize() for text in figure.findobj(lambda artist: hasattr(artist, "get_fontsize"))
             if text.get_visible() and text.get_text().strip()]
    width = figure.get_figwidth() * DPI
    return min(sizes, default=MIN_FONT_SIZE) * DPI / 72 * min(1.0, PHONE_COLUMN_PX / width)


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
