"""Parse drafts/NN.md into named blocks of notebook cells."""

from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell


def blocks(chapter_id: str) -> dict:
    text = (Path(__file__).parent / f"{chapter_id}.md").read_text()
    result = {}
    for part in text.split("%%% block ")[1:]:
        name, body = part.split("\n", 1)
        cells = []
        for chunk in body.split("%% ")[1:]:
            kind, source = chunk.split("\n", 1)
            source = source.strip("\n")
            if not source:
                continue
            cells.append(new_markdown_cell(source) if kind.strip() == "md" else new_code_cell(source))
        result[name.strip()] = cells
    return result


if __name__ == "__main__":
    import sys

    for name, cells in blocks(sys.argv[1]).items():
        print(name, [(c.cell_type, c.source.splitlines()[0][:50]) for c in cells])
