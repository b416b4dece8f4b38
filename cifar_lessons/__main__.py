"""``python -m cifar_lessons``: the command line (see cifar_lessons.cli)."""

from .cli import main

raise SystemExit(main())
