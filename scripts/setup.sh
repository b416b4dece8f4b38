#!/usr/bin/env bash
# Creates .venv (if needed) and installs the project with its test tools.
# Sourced by scripts/book.sh and scripts/test.sh; re-installs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing cifar-lessons and its dependencies into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The versions the records were made with (constraints.txt); the extras: book, docs and dev tools.
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# Material for MkDocs 9.8.2+ prints an end-of-life banner on every build (its successor is Zensical).
export NO_MKDOCS_2_WARNING="${NO_MKDOCS_2_WARNING:-1}"
