"""Opening files the careful way: regular files only, sizes checked before reading (Chapter 1).

Both the data loader and the run records read files a user controls. Through here, a FIFO is refused
without waiting for a writer, a link to a device without reading it, and an oversized file before it
fills the memory. Each caller passes the exception its own errors use and the advice to end them with.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def one_line(error: BaseException) -> str:
    """An exception's message on one line, for messages that quote a library's error."""
    return " ".join(str(error).split()) or type(error).__name__


def open_regular(path: Path, error: type[Exception], advice: str, missing: str | None = None):
    """Open a regular file for reading in binary, or raise ``error`` ending with ``advice``.

    ``missing`` is the message for a file that does not exist (default: the open error itself).
    """
    try:
        # O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as failure:
        raise error(missing or f"cannot open {path} ({one_line(failure)}).") from None
    except OSError as failure:
        raise error(f"cannot open {path} ({one_line(failure)}).") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{path} is not a regular file (a folder, FIFO, device or socket); {advice}")
    return os.fdopen(fd, "rb")


def read_bounded(path: Path, limit: int, error: type[Exception], advice: str,
                 too_large: Callable[[int], str], missing: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; its size is checked before reading.

    ``too_large(size)`` is the message for a larger file; a file that grows past the limit while it is
    read is refused too.
    """
    with open_regular(path, error, advice, missing) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise error(too_large(size))
        try:
            raw = handle.read(limit + 1)
        except OSError as failure:
            raise error(f"cannot read {path} ({one_line(failure)}).") from None
    if len(raw) > limit:
        raise error(f"{path} grew past {limit:,} bytes while it was read; {advice}")
    return raw
