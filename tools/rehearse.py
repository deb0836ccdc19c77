"""A rehearsal of full mode on a CPU that plays a GPU: `python tools/rehearse.py [--steps N] [NOTEBOOK ...]` (default:
every chapter).

Each chapter's full-mode branch (LIGHTBRAIN_MODE=full) runs at full size (LightBrain-Tiny with GPT-2's tokenizer,
FLAN-T5-base's shape, the real batch sizes) but only for a few steps and examples, on a CPU that plays a 16 GB T4
(tools/fake_t4.py, installed by a first cell): a model left on the CPU while its batches go to the GPU fails as it
would on a GPU, and fp16 autocast with loss scaling takes the T4's path (computed in bf16: an fp16 matrix product is
30 times slower than fp32 on this CPU). The hub is switched off: the real loaders read hub-format local copies of the
data (LIGHTBRAIN_DATA, chapter 02) made from the offline mirror in ../shared/data (or --data), and FLAN-T5-base is
a folder in the hub's layout with random weights (tools/hub_t5.py), which chapter 13's `full_setup` finds in
LIGHTBRAIN_DATA as it finds the data.

The sizes come from each chapter's own cell tagged `parameters` (papermill's convention): after it, the rehearsal
adds the assignments in SIZES below (a few steps, a few examples). The library reads no rehearsal setting: what a
chapter runs is what its cells say. Each notebook runs in its own process and is written, executed, to
runs/rehearsal/ (the notebook in nbs/ is not touched), and works in runs/rehearsal/work/, so the rehearsal's data
and checkpoints never mix with those of real runs in nbs/. The table at the end gives each chapter's wall time and
peak memory: the largest resident set of any process it started (the Jupyter kernel, the tokenizer, ...). A
rehearsal finds what breaks only in full mode or only on a GPU; it measures nothing about a GPU's speed.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hub_t5
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from leximind.tokenizer import train_sentencepiece

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "rehearsal"
TRAIN = "{{'max_steps': {n}, 'eval_iters': {n}}}"  # a training run of n steps, evaluated on n batches
SIZES = {  # per chapter: the assignments added after its `parameters` cell ({n}: --steps)
    "04_normalization": "steps = {n}",
    "06_training": f"config_values = {TRAIN}",
    "07_generation": "lengths = ({n}, 2 * {n})",
    "08_lightbrain_pubmed": f"config_values = {TRAIN}\neval_batches = {{n}}",
    "13_multitask": f"config_values = {TRAIN}\nside_steps = scored = side_scored = {{n}}",
    "14_evaluation": f"limit = decoding_articles = {{n}}\nconfig_values = {TRAIN}",
    "15_leximind_app": f"batch_sizes = (1, {{n}})\nconfig_values = {TRAIN}",
}


def rehearsed(nb, chapter: str, steps: int):
    "The notebook as the rehearsal runs it: a played T4 first, then its sizes turned down after its parameters cell."
    play = f"import sys\nsys.path.insert(0, {str(ROOT / 'tools')!r})\nimport fake_t4\nimport torch\n\n"
    play += "fake_t4.install(fp16_as=torch.bfloat16)  # the T4's fp16 path, computed in bf16 (fake_t4's docstring)"
    cells = [nbformat.v4.new_code_cell(play)]
    for cell in nb.cells:
        cells.append(cell)
        if "parameters" in cell.metadata.get("tags", []) and chapter in SIZES:
            cells.append(nbformat.v4.new_code_cell(SIZES[chapter].format(n=steps)))
    nb.cells = cells
    return nb


def make_local_copies(shared: Path, folder: Path) -> Path:
    "LIGHTBRAIN_DATA's folder, in the hub's formats, from the offline mirror (links where the mirror already fits)."
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # the authors' format, read by load_pubmedqa
    (folder / "pubmedqa.json").symlink_to(shared / "pubmedqa" / "ori_pqal.json")
    (folder / "emotion").mkdir()
    for split in ("train", "validation", "test"):
        (folder / "emotion" / f"{split}.jsonl").symlink_to(shared / "emotion" / f"{split}.hf_format.jsonl")
    # the original CSV, split three ways by the loader
    (folder / "ag_news.csv").symlink_to(shared / "ag_news" / "test.csv")
    rows = [
        json.loads(line)
        for line in (shared / "cnndm_xsum_frank" / "frank_articles_references.jsonl").open(encoding="utf-8")
    ]
    with (folder / "cnn_dailymail.jsonl").open(
        "w", encoding="utf-8"
    ) as f:  # the hub's columns: id, article, highlights
        for r in rows:
            if r["dataset"] == "cnndm":
                f.write(json.dumps({"id": r["id"], "article": r["article"], "highlights": r["reference"]}) + "\n")
    return folder


def run_one(notebook: Path, env: dict, steps: int) -> dict:
    """Execute one notebook in OUT/work (its runs/ and data/ stay apart from nbs/'s); its wall time, result and peak
    memory (MiB)."""
    os.environ.update(env)  # for the kernel this process starts
    (OUT / "work").mkdir(exist_ok=True)
    nb, start, error = rehearsed(nbformat.read(notebook, as_version=4), notebook.stem, steps), time.time(), None
    try:
        NotebookClient(
            nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(OUT / "work")}}
        ).execute()
    except CellExecutionError as e:
        error = str(e)[-3000:]
    nbformat.write(nb, OUT / notebook.name)  # executed as far as it got
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux: the largest child's
    if error:
        print(error, file=sys.stderr)
    return {
        "notebook": notebook.name,
        "ok": error is None,
        "seconds": round(time.time() - start),
        "peak_mib": round(peak),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="notebooks to rehearse (default: every chapter in nbs/)")
    p.add_argument(
        "--steps", type=int, default=2, help="training steps, evaluation batches and examples per chapter (default 2)"
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the offline mirror of the datasets")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one notebook and print its result as JSON
    args = p.parse_args()
    env = {
        **os.environ,
        "LIGHTBRAIN_MODE": "full",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "LIGHTBRAIN_DATA": str(OUT / "data"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }  # this checkout's packages
    if args.one:
        print(json.dumps(run_one(Path(args.one), env, args.steps)))
        return 0
    shared = Path(args.data)
    if not (shared / "emotion").is_dir():
        p.error(f"{shared} has no offline mirror of the data: give its folder with --data")
    if (shared / "gpt2" / "tiktoken_cache").is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(shared / "gpt2" / "tiktoken_cache")
    OUT.mkdir(parents=True, exist_ok=True)
    # each rehearsal starts without checkpoints (chapters 14-15 then use 13's)
    shutil.rmtree(OUT / "work", ignore_errors=True)
    make_local_copies(shared, OUT / "data")
    texts = [json.loads(line)["text"] for line in (shared / "emotion" / "train.hf_format.jsonl").open(encoding="utf-8")]
    texts += [row[1] + " " + row[2] for row in csv.reader((shared / "ag_news" / "test.csv").open(encoding="utf-8"))]
    spiece = train_sentencepiece(texts, 32_000)  # as many pieces as these texts allow (about 25,500), up to FLAN-T5's
    hub_t5.write_flan_t5(OUT / "data" / "flan-t5-base", spiece, "base")  # full_setup finds it there
    notebooks = [Path(n).resolve() for n in args.notebooks] or sorted(
        p for p in (ROOT / "nbs").glob("[0-9][0-9]_*.ipynb")
    )
    rows = []
    for nb in notebooks:  # one child process per notebook, so that each peak is that chapter's own
        res = subprocess.run(
            [sys.executable, __file__, "--steps", str(args.steps), "--one", str(nb)],
            capture_output=True,
            text=True,
            env=env,
        )
        row = (
            json.loads(res.stdout.strip().splitlines()[-1])
            if res.returncode == 0
            else {"notebook": nb.name, "ok": False}
        )
        if res.stderr:
            print(res.stderr[-3000:], file=sys.stderr)
        print(
            f"{row['notebook']:32} {'ok' if row['ok'] else 'FAILED':6} {row.get('seconds', '?'):>5} s  peak "
            f"{row.get('peak_mib', '?'):>6} MiB",
            flush=True,
        )
        rows.append(row)
    (OUT / "rehearsal.json").write_text(json.dumps({"steps": args.steps, "chapters": rows}, indent=1))
    failed = [r["notebook"] for r in rows if not r["ok"]]
    print(
        f"{len(rows) - len(failed)} of {len(rows)} chapters ran in full mode"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
