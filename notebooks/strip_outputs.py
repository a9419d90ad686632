"""Strips the outputs of notebooks before they are committed.

    .venv/bin/python notebooks/strip_outputs.py             # every notebooks/*.ipynb, in place
    .venv/bin/python notebooks/strip_outputs.py --check     # exit 1 if any has outputs
    .venv/bin/python notebooks/strip_outputs.py A.ipynb ... # just these

Clears every code cell's outputs and execution count and the run-time cell metadata
(`execution`, `collapsed`, `scrolled`), and cuts the notebook's `language_info` to its name.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
RUN_TIME_CELL_METADATA = ("execution", "collapsed", "scrolled")


def notebook_paths(paths: Sequence[str] = ()) -> list[Path]:
    return [Path(path) for path in paths] or sorted(NOTEBOOKS.glob("*.ipynb"))


def unstripped_cells(notebook: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells with outputs, an execution count or run-time metadata."""
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and (
            cell.get("outputs")
            or cell.get("execution_count") is not None
            or any(key in cell.get("metadata", {}) for key in RUN_TIME_CELL_METADATA)
        )
    ]


def strip(notebook: nbformat.NotebookNode) -> bool:
    """Strips `notebook` in place; True when anything changed. The language details a kernel
    fills in (e.g. its Python version) are cut to the language's name, to keep diffs quiet."""
    language = notebook.metadata.get("language_info", {})
    short_language = {"name": language.get("name", "python")}
    changed = bool(unstripped_cells(notebook)) or language != short_language
    notebook.metadata["language_info"] = short_language
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            for key in RUN_TIME_CELL_METADATA:
                cell.metadata.pop(key, None)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Strips the outputs of notebooks.")
    parser.add_argument("notebooks", nargs="*", help="default: every notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    dirty = []
    for path in notebook_paths(args.notebooks):
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if args.check:
            if unstripped_cells(notebook):
                dirty.append(path)
        elif strip(notebook):
            nbformat.write(notebook, path)
            print(f"stripped {path}")
    for path in dirty:
        print(f"{path} has outputs: run notebooks/strip_outputs.py", file=sys.stderr)
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
