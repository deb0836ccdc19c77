"""The console scripts' entry point: written by hand, not exported (it is plumbing, not a lesson).

Importing torch takes seconds, and every command's module imports it. So each console script starts here: `--help`
and `--version` are answered at once, `--help` from the text the command's own parser printed when
`python tools/export.py` last ran (kept in `_help.json`; `tests/test_cli.py` checks it against the parsers), and the
command's module, with torch, is imported only to run it.
"""

import importlib
import json
import sys
from pathlib import Path

from lightbrain import __version__

COMMANDS = {  # console script: module and function (pyproject.toml's [project.scripts] point each one at `main`)
    "lightbrain-prepare": ("lightbrain.cli", "prepare_command"),
    "lightbrain-train": ("lightbrain.cli", "train_command"),
    "lightbrain-evaluate": ("lightbrain.cli", "evaluate_command"),
    "lightbrain-generate": ("lightbrain.cli", "generate_command"),
    "leximind-train": ("leximind.app", "train_command"),
    "leximind-evaluate": ("leximind.app", "evaluate_command"),
    "leximind": ("leximind.app", "analyze_command"),
    "leximind-demo": ("leximind.app", "demo_command"),
}
HELP = Path(__file__).with_name("_help.json")


def wants(argv: list[str], *flags: str) -> bool:
    "Whether argparse would act on one of `flags`: given before any `--` (after it, every word is text)."
    before = argv[: argv.index("--")] if "--" in argv else argv
    return any(flag in before for flag in flags)


def run(prog: str, argv: list[str]):
    "Run the command `prog` on `argv`, answering --help and --version without importing it."
    if wants(argv, "-h", "--help") and HELP.is_file():
        print(json.loads(HELP.read_text(encoding="utf-8"))[prog], end="")
        return
    if wants(argv, "--version"):
        print(f"{prog} {__version__}")
        return
    module, function = COMMANDS[prog]
    getattr(importlib.import_module(module), function)(argv)


def main():
    "The console scripts' one entry point: the script's own name says which command it is."
    run(Path(sys.argv[0]).name.removesuffix(".exe"), sys.argv[1:])
