"""How long each console script takes to answer --help and --version (issue 36's target: under 1.5 s), beside what
running a command costs before its first line of work (importing its module, torch included).

    python bench/commands.py
"""

import shutil
import subprocess
import sys

from common import best_time, hardware, table

from lightbrain._commands import COMMANDS


def seconds(*argv: str) -> float:
    "Best of 3 wall-clock times of a subprocess, in seconds."
    return best_time(lambda: subprocess.run(argv, capture_output=True, check=True))


def main():
    rows = []
    for prog, (module, _) in COMMANDS.items():
        script = shutil.which(prog)
        if script is None:
            sys.exit(f"{prog} is not installed: pip install -e .")
        rows.append(
            [
                prog,
                f"{seconds(script, '--help'):.2f}",
                f"{seconds(script, '--version'):.2f}",
                f"{seconds(sys.executable, '-c', f'import {module}'):.2f}",
            ]
        )
    print(hardware())
    print(table(["command", "--help (s)", "--version (s)", "import its module (s)"], rows))


if __name__ == "__main__":
    main()
