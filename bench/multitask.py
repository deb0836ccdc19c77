"""LexiMind benchmarks, in one process:

1. `analyze()` latency and documents per second for FLAN-T5-small's layers (random weights, an 8,100-piece vocabulary
   trained here instead of its 32,128) on this machine;
2. emotion classification from scratch on the real dair-ai/emotion tweets (the course's slice: every tweet, splits
   made disjoint by chapter 02's loader) within a 10-minute CPU budget, against a TF-IDF + logistic-regression baseline
   (`leximind.evaluate.tfidf_classifier`, scikit-learn) trained and tested in the same run.

    python bench/multitask.py [--minutes 10] [--emotion builtin|PATH]
"""

import argparse
import time

import torch
from common import hardware, table

from leximind.app import LexiMind
from leximind.evaluate import classify, tfidf_classifier
from leximind.model import T5, T5Config
from leximind.multitask import TASKS, MultiTaskBatches, MultiTaskT5, count_tokens, load_emotion, multitask_loss
from leximind.tokenizer import SentencePieceTokenizer, train_sentencepiece
from lightbrain.core import get_device, seed_everything
from lightbrain.train import TrainConfig, train

ARTICLE = (
    "The city council voted on Tuesday to turn the disused railway station into a public library, after three years "
    "of debate. More than 10,000 residents signed a petition in favour of the plan, which will be paid for by a "
    "regional grant and private donations. Work is expected to begin in the spring and to last eighteen months. "
) * 4


def latency(emotion) -> list:
    """Time analyze() on one article and on batches, for LexiMind with FLAN-T5-small's layers, an 8,100-piece
    vocabulary, random weights."""
    tokenizer = SentencePieceTokenizer(train_sentencepiece(list(emotion["train"]["text"]) + [ARTICLE], 8000))
    torch.manual_seed(0)
    # random weights can emit any id: the vocabulary must match the tokenizer's
    config = T5Config.flan_t5_small(vocab_size=tokenizer.vocab_size, dropout=0.0)
    app = LexiMind(MultiTaskT5(T5(config)), tokenizer, get_device(), max_new_tokens=48)
    app.analyze(ARTICLE)  # warm up
    rows = []
    for n in (1, 16):
        start = time.perf_counter()
        app.analyze([ARTICLE] * n)
        dt = time.perf_counter() - start
        rows.append(
            [
                f"analyze(), {n} article{'s' if n > 1 else ''} of {len(tokenizer.encode(ARTICLE))} tokens, 4 "
                "beams, 48 new tokens",
                f"{dt:.2f} s",
                f"{n / dt:.2f}",
            ]
        )
    return rows


def emotion_from_scratch(emotion, minutes: float) -> tuple[float, float, int, float]:
    """Test accuracy of LexiMind trained from scratch on emotion alone (within `minutes`), and of TF-IDF + logistic
    regression."""
    start = time.perf_counter()
    baseline = tfidf_classifier(list(emotion["train"]["text"]), list(emotion["train"]["label"]))
    baseline_acc = (baseline.predict(list(emotion["test"]["text"])) == emotion["test"]["label"]).mean()
    print(f"TF-IDF + logistic regression fitted in {time.perf_counter() - start:.0f} s", flush=True)

    seed_everything(0)
    tokenizer = SentencePieceTokenizer(
        train_sentencepiece([TASKS["emotion"].prefix + t for t in emotion["train"]["text"]], 8000)
    )
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=128,
        d_kv=32,
        d_ff=512,
        n_layers=2,
        n_decoder_layers=1,
        n_heads=4,
        context_length=64,
    )
    model = MultiTaskT5(T5(config))
    device = get_device()
    data = MultiTaskBatches({"emotion": emotion}, tokenizer, max_source=64, device=device)
    steps = 2500
    train_config = TrainConfig(
        batch_size=64,
        max_steps=steps,
        lr=2e-3,
        min_lr=1e-4,
        warmup_steps=250,
        weight_decay=0.01,
        eval_interval=500,
        eval_iters=10,
        tracker="none",
        progress=False,
    )
    start = time.perf_counter()
    train(model, data, multitask_loss, train_config, device, count_tokens=count_tokens)
    minutes_used = (time.perf_counter() - start) / 60
    if minutes_used > minutes:
        print(f"warning: training took {minutes_used:.1f} minutes, over the {minutes}-minute budget")
    predicted = classify(model, tokenizer, "emotion", list(emotion["test"]["text"])).argmax(-1)
    ours_acc = (predicted == torch.tensor(emotion["test"]["label"])).float().mean().item()
    return ours_acc, float(baseline_acc), steps, minutes_used


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget for the from-scratch model")
    p.add_argument(
        "--emotion",
        default="builtin",
        help="'builtin' (the course's slice: all of dair-ai/emotion) or a local copy in hub format",
    )
    args = p.parse_args()
    print(f"hardware: {hardware()}\n")
    emotion = load_emotion(args.emotion)
    print(table(["", "time", "documents/s"], latency(emotion)), "\n")
    ours, baseline, steps, minutes = emotion_from_scratch(emotion, args.minutes)
    print(
        table(
            [f"emotion test accuracy ({len(emotion['test']):,} tweets)", "accuracy"],
            [
                [f"LexiMind from scratch ({steps} steps, {minutes:.1f} min on this CPU)", f"{ours:.4f}"],
                ["TF-IDF (1-2 grams) + logistic regression", f"{baseline:.4f}"],
            ],
        )
    )


if __name__ == "__main__":
    main()
