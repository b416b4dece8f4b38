"""The command's entry point (``cifar-lessons`` and ``python -m cifar_lessons``): signal handlers first, then
the command line (:mod:`cifar_lessons.book.cli`).

A Ctrl-C or SIGTERM that arrives while the package's own modules are still importing finds a handler already:
nothing has started, so the process leaves at once with "interrupted." and the shell's status (130 or 143),
never a traceback. Once :func:`cifar_lessons.book.cli.main` runs, its own handlers take over.
"""

import os
import signal
import sys


def _early_stop(signum, frame):
    sys.stderr.write("interrupted.\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_stop)
    from .book.cli import run  # after the handlers: a signal during this import is no traceback either

    run()
