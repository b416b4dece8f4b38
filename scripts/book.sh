#!/usr/bin/env bash
# Run the book: every chapter in order (reusing recorded runs whose config still matches,
# training the rest), re-execute the notebooks, build the site, and print the accuracy table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
mkdir -p logs
cifar-lessons book 2>&1 | tee logs/book.log
cifar-lessons notebooks
mkdocs build --strict
echo
cifar-lessons report
echo
echo "Site built in site/ (open site/index.html, or run: mkdocs serve)"
