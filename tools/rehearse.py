"""A rehearsal of full mode on a CPU: `python tools/rehearse.py [--steps N] [NOTEBOOK ...]` (default: every chapter).

Each chapter's full-mode branch (LIGHTBRAIN_MODE=full) runs at full size (LightBrain-Tiny with GPT-2's tokenizer,
FLAN-T5-base, the real batch sizes) but only for a few steps and examples (LIGHTBRAIN_REHEARSAL_STEPS, chapter 00),
with the hub switched off: the real loaders read hub-format local copies of the data (LIGHTBRAIN_DATA, chapter 02)
made from the offline mirror in ../shared/data (or --data). Without the hub, FLAN-T5-base is a stand-in of the same
shape with random weights (chapter 13 says so in its output). Each notebook runs in its own process and is written,
executed, to runs/rehearsal/ (the notebook in nbs/ is not touched), and works in runs/rehearsal/work/, so the
rehearsal's data and checkpoints never mix with those of real runs in nbs/. The table at the end gives each
chapter's wall
time and peak memory: the largest resident set of any process it started (the Jupyter kernel, the tokenizer, ...).
A rehearsal finds what breaks only in full mode; it measures nothing about a GPU.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "rehearsal"


def make_local_copies(shared: Path, folder: Path) -> Path:
    "LIGHTBRAIN_DATA's folder, in the hub's formats, from the offline mirror (links where the mirror already fits)."
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "pubmedqa.json").symlink_to(
        shared / "pubmedqa" / "ori_pqal.json"
    )  # the authors' format, read by load_pubmedqa
    (folder / "emotion").mkdir()
    for split in ("train", "validation", "test"):
        (folder / "emotion" / f"{split}.jsonl").symlink_to(shared / "emotion" / f"{split}.hf_format.jsonl")
    (folder / "ag_news.csv").symlink_to(
        shared / "ag_news" / "test.csv"
    )  # the original CSV, split three ways by the loader
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


def run_one(notebook: Path, env: dict) -> dict:
    """Execute one notebook in OUT/work (its runs/ and data/ stay apart from nbs/'s); its wall time, result and peak
    memory (MiB)."""
    os.environ.update(env)  # for the kernel this process starts
    (OUT / "work").mkdir(exist_ok=True)
    nb, start, error = nbformat.read(notebook, as_version=4), time.time(), None
    if env.get("FAKE_T4") == "1":  # play a T4 before the chapter's first cell (tools/fake_t4.py)
        play = f"import sys\nsys.path.insert(0, {str(ROOT / 'tools')!r})\nimport fake_t4\n\nfake_t4.install()"
        nb.cells.insert(0, nbformat.v4.new_code_cell(play))
    try:
        NotebookClient(
            nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(OUT / "work")}}
        ).execute()
    except CellExecutionError as e:
        error = str(e)[-3000:]
    nbformat.write(nb, OUT / notebook.name)  # executed as far as it got
    peak = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )  # KiB on Linux: the largest of this process's children
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
        "LIGHTBRAIN_REHEARSAL_STEPS": str(args.steps),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "LIGHTBRAIN_DATA": str(OUT / "data"),
        "FAKE_T4": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }  # this checkout's packages
    if args.one:
        print(json.dumps(run_one(Path(args.one), env)))
        return 0
    shared = Path(args.data)
    if not (shared / "emotion").is_dir():
        p.error(f"{shared} has no offline mirror of the data: give its folder with --data")
    if (shared / "gpt2" / "tiktoken_cache").is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(shared / "gpt2" / "tiktoken_cache")
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(
        OUT / "work", ignore_errors=True
    )  # each rehearsal starts without checkpoints (chapters 14-15 then use 13's)
    make_local_copies(shared, OUT / "data")
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
