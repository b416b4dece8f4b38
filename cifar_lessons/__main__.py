"""``python -m cifar_lessons``: the command line (see cifar_lessons.cli)."""

import os
import signal
import sys


def _early_stop(signum, frame):
    # A signal before the command line has set its own handlers: nothing has started, so leave at once.
    sys.stderr.write("interrupted.\n")
    sys.stderr.flush()
    os._exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, _early_stop)

from .cli import run  # noqa: E402 (after the handlers: a Ctrl-C during this import is no traceback either)

run()
