#!/usr/bin/env bash
# Set up .venv, then run the test suite. Extra arguments go to pytest (e.g. -m full).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ruff check .  # lint first: seconds, and a failure names the line
python -m pytest "$@"
