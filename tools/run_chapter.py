"""Run chapters top to bottom in their folder and store their outputs as a reader should see them.

    python tools/run_chapter.py nbs/06_training.ipynb nbs/07_generation.ipynb

Each notebook is executed in place, then its outputs are tidied (a cell's consecutive pieces of one stream, which a
streaming print leaves behind, become one output; empty pieces go) and it is cleaned as `nbdev-clean` cleans it. A
notebook whose run fails is left as it was."""

import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from lightbrain.core import write_atomic


def merge_streams(nb) -> None:
    "Join each cell's consecutive outputs of one stream (stdout, stderr) into one, and drop empty ones."
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and not out.text:
                continue
            previous = outputs[-1] if outputs else None
            if out.output_type == "stream" and previous is not None and previous.get("name") == out.get("name"):
                previous.text += out.text
                continue
            outputs.append(out)
        if cell.cell_type == "code":
            cell.outputs = outputs


def run(path: Path) -> float:
    "Execute the notebook at `path` in its folder, tidy and clean it; returns the seconds it took."
    nb, start = nbformat.read(path, as_version=4), time.perf_counter()
    NotebookClient(nb, timeout=3600, resources={"metadata": {"path": str(path.parent)}}).execute()
    merge_streams(nb)
    write_atomic(path, lambda tmp: nbformat.write(nb, tmp))
    subprocess.run(["nbdev-clean", "--fname", str(path)], check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[1:]:
        print(f"{name}: {run(Path(name)):.0f} s", flush=True)
