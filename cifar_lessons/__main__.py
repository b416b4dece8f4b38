"""``python -m cifar_lessons``: the command line (see cifar_lessons.entry and cifar_lessons.book.cli)."""

from .entry import main

main()
