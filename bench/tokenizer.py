"""Tokenizer speed: our BPE trainer vs Hugging Face `tokenizers`, our encoder vs tiktoken. One process, same text.

    python bench/tokenizer.py [--corpus FILE]

The corpus is tinyshakespeare from the shared data mirror when present, else the course's built-in sample.
Both trainers use GPT-2's pre-split (HF: the ByteLevel pre-tokenizer with its GPT-2 regex) and reserve one
special token. Encoding is timed on the same corpus: best of three runs, our cache cold on the first run only.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, best_time, hardware, table
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from lightbrain.tokenizer import ENDOFTEXT, BPETokenizer, get_gpt2_tokenizer


def load_corpus(path: str | None) -> tuple[str, str]:
    "The benchmark text and its name."
    path = Path(path) if path else SHARED_DATA / "tinyshakespeare" / "input.txt"
    if path.exists():
        return path.read_text(encoding="utf-8"), path.name
    from lightbrain.data import load_pubmedqa, pubmedqa_text

    return "\n".join(
        map(pubmedqa_text, load_pubmedqa("builtin")["train"])
    ), "the course's PubMedQA slice (tinyshakespeare not found)"


def train_hf(text: str, vocab_size: int) -> Tokenizer:
    "Hugging Face's BPE trainer with GPT-2's byte-level pre-split."
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([text], trainer)
    return tok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="a UTF-8 text file (default: tinyshakespeare from the shared data mirror)")
    args = parser.parse_args()
    text, name = load_corpus(args.corpus)
    mb = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {name}, {mb:.2f} MB\nhardware: {hardware()}\n")

    rows, trained = [], {}
    for vocab in (512, 2048, 8192):
        ours = best_time(lambda: trained.__setitem__(vocab, BPETokenizer.train(text, vocab, [ENDOFTEXT])), repeat=1)
        hf = best_time(lambda: train_hf(text, vocab), repeat=1)
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
        gpt2 = BPETokenizer.from_gpt2_files()
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
    print(note)


if __name__ == "__main__":
    main()
