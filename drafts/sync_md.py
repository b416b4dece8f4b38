"""Copy the drafts' markdown into an executed notebook without re-executing it (matched by first line)."""
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from cells import blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
for chapter_id in sys.argv[1:]:
    path = next((ROOT / "chapters").glob(f"{chapter_id}_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    drafted = {cell.source.splitlines()[0]: cell.source for cells in blocks(chapter_id).values()
               for cell in cells if cell.cell_type == "markdown"}
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.splitlines()[0] in drafted:
            if cell.source != drafted[cell.source.splitlines()[0]]:
                cell.source = drafted[cell.source.splitlines()[0]]
                changed += 1
    nbformat.write(nb, path)
    print(path.name, changed, "markdown cells updated")
