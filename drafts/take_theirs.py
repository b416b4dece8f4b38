"""After merging a newer `code`, bring its changed cells (sources and outputs) into my notebooks 05-08.

usage: take_theirs.py BASE_REF NEW_REF  (BASE_REF: the code commit my notebooks were built from)
Cells are matched by position between BASE_REF and NEW_REF, and by id between BASE_REF and mine.
"""

import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["05_batch_normalization", "06_dropout", "07_learning_rate_schedule", "08_early_stopping"]


def at(ref, path):
    text = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    return nbformat.reads(text, as_version=4)


base_ref, new_ref = sys.argv[1], sys.argv[2]
for name in NAMES:
    path = f"chapters/{name}.ipynb"
    base, new = at(base_ref, path), at(new_ref, path)
    mine = nbformat.read(ROOT / path, as_version=4)
    if len(base.cells) != len(new.cells):
        print(f"{name}: cell count changed {len(base.cells)} -> {len(new.cells)}: merge by hand")
        continue
    mapping = {b.id: n for b, n in zip(base.cells, new.cells)}
    mine_ids = {cell.id for cell in mine.cells}
    replaced = 0
    for index, cell in enumerate(mine.cells):
        if cell.id in mapping:
            mine.cells[index] = mapping[cell.id]
            replaced += 1
    dropped_changed = [b.id for b, n in zip(base.cells, new.cells)
                       if b.id not in mine_ids and b.source != n.source]
    nbformat.write(mine, ROOT / path)
    print(f"{name}: {replaced} cells taken from {new_ref}; cells I dropped that changed there: {dropped_changed}")
    print(json.dumps([n.source.splitlines()[0][:60] for b, n in zip(base.cells, new.cells)
                      if b.source != n.source]))
