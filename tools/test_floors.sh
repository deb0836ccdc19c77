#!/usr/bin/env bash
# The course at its floors: a second virtual environment with the oldest versions pyproject.toml allows
# (tools/floors.txt, a "Colab-like" set), then the floor suite: every test file, and the chapters that compare with
# PyTorch, Hugging Face, tiktoken and SentencePiece (pass other notebooks or pytest options to run more, e.g. `nbs`).
# Run by .ci/run after the main test command. torch 2.4.1 comes from PyPI as a CUDA build (about 3 GB of downloads,
# 5 GB on disk); it runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FLOORS_VENV:-.floors-venv}"
[ -x "$VENV/bin/python" ] || python -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -c tools/floors.txt -e ".[dev]"
"$VENV/bin/python" -c "import numpy, torch, transformers; print('floors: torch', torch.__version__, '| transformers', transformers.__version__, '| numpy', numpy.__version__)"
SUITE=(tests nbs/00_core.ipynb nbs/03_attention.ipynb nbs/04_normalization.ipynb nbs/05_gpt.ipynb nbs/10_sentencepiece.ipynb
       nbs/11_encoder_decoder.ipynb nbs/12_seq2seq_decoding.ipynb nbs/15_leximind_app.ipynb)
PATH="$(cd "$VENV/bin" && pwd):$PATH" "$VENV/bin/python" tools/test.py "${SUITE[@]}" "$@"
