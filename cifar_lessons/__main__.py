"""``python -m cifar_lessons``: the command line (see cifar_lessons.cli)."""

from .cli import run

raise SystemExit(run())
