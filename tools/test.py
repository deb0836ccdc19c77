"""The course's one test command: `python tools/test.py` (add pytest options after it, e.g. `-x`).

1. re-export both packages and the README, and fail if they differed from the notebooks;
   then ruff: lint everything (pyproject.toml's [tool.ruff]) and check that the sources are formatted
   (fix with `ruff format nbs tools tests bench` and `ruff check --fix .`);
2. run pytest: tests/ and, through nbval in lax mode, every notebook top to bottom (quick mode unless
   LIGHTBRAIN_MODE says otherwise). A cell that raises fails the run, as in `nbdev-test`, and the output of
   every cell marked `# NBVAL_CHECK_OUTPUT` must match the output stored in the notebook.
Each notebook is executed once. `nbdev-test` runs the same notebooks without comparing outputs; use it
alone when you only want to know that every cell runs. Notebooks and test files run in parallel, one
worker per core (up to 4), each worker on one thread; pytest-xdist's `--dist loadfile` keeps each
notebook's cells in order on one worker.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS = str(min(4, os.cpu_count() or 1))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per worker, so that parallel workers do not fight over cores
STYLED = ["nbs", "tools", "tests", "bench"]  # the sources: the packages are generated from the notebooks
STEPS = [
    ("export check", [sys.executable, "tools/export.py", "--check"]),
    ("lint (ruff)", [sys.executable, "-m", "ruff", "check", "."]),
    ("format check (ruff)", [sys.executable, "-m", "ruff", "format", "--check", *STYLED]),
    ("pytest + nbval", [sys.executable, "-m", "pytest", "-n", WORKERS, "--dist", "loadfile", *sys.argv[1:]]),
]


def main() -> int:
    for name, cmd in STEPS:
        shown = ["python", *cmd[1:]] if cmd[0] == sys.executable else [Path(cmd[0]).name, *cmd[1:]]
        print(f"\n=== {name}: {' '.join(shown)}", flush=True)
        start = time.time()
        code = subprocess.run(cmd, cwd=ROOT, env=ENV).returncode
        print(
            f"=== {name}: {'passed' if code == 0 else f'FAILED (exit code {code})'} in {time.time() - start:.0f} s",
            flush=True,
        )
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
