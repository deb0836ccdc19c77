"""Tokenizer speed: our BPE trainer vs Hugging Face `tokenizers`, our encoder vs tiktoken. One process, same text.

    python bench/tokenizer.py [--corpus FILE] [--large-mb N]

The corpus is tinyshakespeare from the shared data mirror when present, else the course's built-in sample.
Both trainers use GPT-2's pre-split (HF: the ByteLevel pre-tokenizer with its GPT-2 regex) and reserve one
special token; each training is timed best of three. Encoding is timed on the same corpus: best of three runs, our
cache cold on the first run only.
Then training at corpus scale: a file of at least --large-mb MB (default 200) made of the shared data's real texts,
their lines shuffled and repeated, trained to 8,192 tokens from the file by both trainers, each in its own process
(ours reads it in blocks with `text_chunks` and counts in one process per core), with each one's peak memory
(proportional set size of the process and its workers, sampled every 50 ms, above what they held before training).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import SHARED_DATA, best_time, hardware, table
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from lightbrain.tokenizer import ENDOFTEXT, BPETokenizer, get_gpt2_tokenizer, load_gpt2_files, text_chunks, train_bpe


def load_corpus(path: str | None) -> tuple[str, str]:
    "The benchmark text and its name."
    path = Path(path) if path else SHARED_DATA / "tinyshakespeare" / "input.txt"
    if path.exists():
        return path.read_text(encoding="utf-8"), path.name
    from lightbrain.data import load_pubmedqa, pubmedqa_text

    return "\n".join(
        map(pubmedqa_text, load_pubmedqa("builtin")["train"])
    ), "the course's PubMedQA slice (tinyshakespeare not found)"


def hf_trainer(vocab_size: int) -> tuple[Tokenizer, trainers.BpeTrainer]:
    "Hugging Face's BPE tokenizer with GPT-2's byte-level pre-split, and its trainer."
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    return tok, trainer


def train_hf(text: str, vocab_size: int) -> Tokenizer:
    "Hugging Face's trainer on `text`."
    tok, trainer = hf_trainer(vocab_size)
    tok.train_from_iterator([text], trainer)
    return tok


def real_lines() -> list[str]:
    "The lines of the shared data's real texts: plays, stories, tweets, news, abstracts, articles."
    d, lines = SHARED_DATA, []
    for path in [
        d / "tinyshakespeare" / "input.txt",
        d / "cs336_2025" / "fixtures" / "corpus.en",
        d / "ag_news" / "test.csv",
    ]:
        lines += path.read_text(encoding="utf-8").splitlines()
    for path, key in [
        (d / "emotion" / "train.hf_format.jsonl", "text"),
        (d / "cnndm_xsum_frank" / "frank_articles_references.jsonl", "article"),
    ]:
        lines += [json.loads(line)[key] for line in path.read_text(encoding="utf-8").splitlines()]
    for item in json.loads((d / "pubmedqa" / "ori_pqal.json").read_text(encoding="utf-8")).values():
        lines += item["CONTEXTS"]
    return [line for line in lines if line.strip()]


def large_corpus(folder: Path, mb: int) -> Path:
    "A file of at least `mb` MB: the real lines, shuffled and repeated, a blank line between repeats."
    lines, rng, size, path = real_lines(), random.Random(0), 0, folder / "corpus.txt"
    with open(path, "w", encoding="utf-8") as f:
        while size < mb * 1e6:
            rng.shuffle(lines)
            part = "\n".join(lines) + "\n\n"
            f.write(part)
            size += len(part.encode("utf-8"))
    return path


def tree_pss_mb() -> float:
    "Memory of this process and its children (MB, proportional set size: shared pages split between sharers)."
    me, total = os.getpid(), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if pid == me or ppid == me:
                rollup = (stat.parent / "smaps_rollup").read_text()
                total += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
        except (OSError, ValueError, StopIteration):
            pass  # a process that ended meanwhile
    return total / 1024


def train_one(which: str, path: str, vocab_size: int) -> dict:
    """Train one trainer on the file at `path`: seconds, and the peak memory of this process and its children above
    what they held before training (sampled every 50 ms)."""
    before, peak, done = tree_pss_mb(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_pss_mb())

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    if which == "ours":
        train_bpe(text_chunks([path]), vocab_size, [ENDOFTEXT], processes=os.cpu_count())
    else:
        tok, trainer = hf_trainer(vocab_size)
        tok.train([path], trainer)
    seconds = time.perf_counter() - start
    done.set()
    return {"seconds": seconds, "peak_mb": max(peak[0], tree_pss_mb()) - before}


def at_scale(mb: int):
    "Both trainers on a corpus of at least `mb` MB, each in a fresh process."
    with tempfile.TemporaryDirectory() as d:
        path = large_corpus(Path(d), mb)
        size = path.stat().st_size / 1e6
        runs = {}
        for which in ("ours", "hf"):
            cmd = [sys.executable, __file__, "--train-one", which, str(path)]
            runs[which] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    print(
        f"Training at corpus scale: {size:,.0f} MB of real lines, shuffled and repeated, to 8,192 tokens, from the file"
    )
    print(
        table(
            ["", "ours (Python, text_chunks, one process per core)", "HF tokenizers (Rust)", "ours / HF"],
            [
                [
                    "time",
                    *(f"{runs[k]['seconds']:.1f} s" for k in runs),
                    f"{runs['ours']['seconds'] / runs['hf']['seconds']:.2f}x",
                ],
                [
                    "peak memory above the start (process and workers)",
                    *(f"{runs[k]['peak_mb']:,.0f} MB" for k in runs),
                    "",
                ],
            ],
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="a UTF-8 text file (default: tinyshakespeare from the shared data mirror)")
    parser.add_argument("--large-mb", type=int, default=200, help="size of the corpus-scale run (0: skip it)")
    parser.add_argument("--train-one", nargs=2, help=argparse.SUPPRESS)  # internal: one trainer, in its own process
    args = parser.parse_args()
    if args.train_one:
        print(json.dumps(train_one(*args.train_one, 8192)))
        return
    text, name = load_corpus(args.corpus)
    mb = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {name}, {mb:.2f} MB\nhardware: {hardware()}\n")

    rows, trained = [], {}
    for vocab in (512, 2048, 8192):
        ours = best_time(lambda: trained.__setitem__(vocab, train_bpe(text, vocab, [ENDOFTEXT])), repeat=3)
        hf = best_time(lambda: train_hf(text, vocab), repeat=3)
        rows.append([vocab, f"{ours:.2f} s", f"{hf:.2f} s", f"{ours / hf:.2f}x"])
    print("Training to a vocabulary size (same text, same pre-split)")
    print(table(["vocab", "ours (Python)", "HF tokenizers (Rust)", "ours / HF"], rows), "\n")

    rows = []
    small = trained[8192]
    cold = best_time(lambda: BPETokenizer(small.merges, small.special_tokens).encode(text), repeat=1)  # a fresh cache
    rows.append(["ours encode, vocab 8192, cold cache", mb / cold])
    rows.append(["ours encode, vocab 8192, warm cache", mb / best_time(lambda: small.encode(text))])
    small_tt = small.to_tiktoken()
    rows.append(["ours to_tiktoken(), vocab 8192", mb / best_time(lambda: small_tt.encode(text))])
    try:
        reference = get_gpt2_tokenizer()
        gpt2 = load_gpt2_files()
        assert gpt2.encode(text) == reference.encode(text), "GPT-2 parity failed"
        rows.append(["ours encode, GPT-2 vocab, warm cache", mb / best_time(lambda: gpt2.encode(text))])
        gpt2_tt = gpt2.to_tiktoken()
        ours_tt = mb / best_time(lambda: gpt2_tt.encode(text))
        ref_tt = mb / best_time(lambda: reference.encode(text))
        rows += [["ours to_tiktoken(), GPT-2 vocab", ours_tt], ["tiktoken gpt2", ref_tt]]
        note = f"to_tiktoken() (GPT-2 vocab) runs at {ours_tt / ref_tt:.2f}x tiktoken gpt2's speed."
    except RuntimeError as e:
        note = f"tiktoken gpt2 skipped: {e}"
    print("Encoding throughput (MB/s, single thread, best of 3)")
    print(table(["encoder", "MB/s"], [[r[0], f"{r[1]:.2f}"] for r in rows]))
    print(note, "\n")
    if args.large_mb:
        at_scale(args.large_mb)


if __name__ == "__main__":
    main()
