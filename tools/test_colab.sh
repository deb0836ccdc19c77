#!/usr/bin/env bash
# The course in today's Colab: a virtual environment on Colab's Python (3.13) with Colab's published package versions
# (tools/colab.txt names its source and date), then the course installed as the README's Colab cell installs it
# (pip install -e ".[dev]": what Colab has and the course accepts is kept), the Colab packages that install replaced,
# and the whole test command. Run by .ci/run when LIGHTBRAIN_CI_FULL=1. torch comes from PyPI as a CUDA build (about
# 3 GB of downloads, 6 GB on disk); it runs on the CPU. COLAB_PYTHON names another Python 3.13.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${COLAB_PYTHON:-$(command -v python3.13 || echo "$HOME/.pyenv/versions/3.13.0/bin/python")}"
VENV="${COLAB_VENV:-.colab-venv}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r tools/colab.txt
"$VENV/bin/python" -m pip freeze > "$VENV/colab-before.txt"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
"$VENV/bin/python" - "$VENV/colab-before.txt" <<'PY'
import importlib.metadata as md, re, sys
pins = dict(re.match(r"([\w.-]+)==([^\s;]+)", l).groups() for l in open("tools/colab.txt") if re.match(r"[\w.-]+==", l))
changed = [f"{n} {v} -> {md.version(n)}" for n, v in pins.items() if md.version(n).split("+")[0] != v]
print("Colab:", sys.version.split()[0], "| the course's install replaced:", ", ".join(changed) or "nothing")
PY
PATH="$(cd "$VENV/bin" && pwd):$PATH" "$VENV/bin/python" tools/test.py "$@"
