"""Training throughput and model FLOPs utilisation (MFU) for the quick and LightBrain-Tiny configurations.

    python bench/train.py [--steps N] [--batch B]

Batches are random windows of real text: the course's PubMedQA training slice, tokenized with a 1,024-token BPE for
the quick model and with GPT-2's tokenizer for LightBrain-Tiny (as chapter 08 does).

The peak is measured in the same run: the best of several large matrix multiplies in the training precision
(fp32 on a CPU, the autocast dtype on a GPU). FLOPs per token follow nanoGPT/PaLM: 6N + 12 L C T (N parameters
without position embeddings, L layers, C width, T context), forward and backward together.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from common import hardware, table

from lightbrain.core import get_device
from lightbrain.data import get_batch, load_pubmedqa, pubmedqa_text
from lightbrain.model import GPT, GPTConfig, param_count
from lightbrain.tokenizer import load_tokenizer, train_bpe
from lightbrain.train import TrainConfig, lm_loss, precision, train


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    "Best FLOP/s of an n x n matrix multiply on `device` in `dtype`."
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def real_tokens(docs: list[str], tokenizer) -> np.ndarray:
    "The documents as one token stream, end-of-text after each, as chapter 02's token files hold them."
    return np.array([t for d in docs for t in tokenizer.encode_ordinary(d) + [tokenizer.eot_token]], dtype=np.int64)


def throughput(config: GPTConfig, tokens: np.ndarray, batch: int, steps: int, device) -> float:
    "Median training tokens/s of our loop (forward, backward, AdamW) on windows of `tokens`, first two steps excluded."
    torch.manual_seed(0)
    model = GPT(config)
    batches = lambda split, batch_size, g: get_batch(tokens, batch_size, config.context_length, device, g)
    cfg = TrainConfig(
        batch_size=batch,
        max_steps=steps + 2,
        eval_interval=10_000,
        log_interval=1,
        tracker="none",
        progress=False,
    )
    rows = train(model, batches, lm_loss, cfg, device)
    return statistics.median(r["tokens_per_s"] for r in rows[2:])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    device = get_device()
    policy = precision("auto", device)
    peak = matmul_peak(device, policy.dtype or torch.float32)
    print(
        f"device {device}, precision {policy.name}\nhardware: {hardware()}\nmeasured matmul peak: {peak / 1e12:.3f}"
        " TFLOP/s\n"
    )
    docs = [pubmedqa_text(ex) for ex in load_pubmedqa("builtin")["train"]]
    bpe = train_bpe(docs, vocab_size=1024, special_tokens=["<|endoftext|>"])
    runs = [
        ("quick (tiny)", GPTConfig.tiny(vocab_size=1024, context_length=128), real_tokens(docs, bpe)),
        ("LightBrain-Tiny", GPTConfig.lightbrain_tiny(dropout=0.0), real_tokens(docs, load_tokenizer("gpt2"))),
    ]
    rows = []
    for name, config, tokens in runs:
        tps = throughput(config, tokens, args.batch, args.steps, device)
        flops_per_token = (
            6 * param_count(config, positions=False) + 12 * config.n_layers * config.d_model * config.context_length
        )
        achieved = tps * flops_per_token
        rows.append(
            [name, f"{param_count(config):,}", f"{tps:,.0f}", f"{achieved / 1e12:.3f}", f"{achieved / peak:.1%}"]
        )
    print(table(["config", "parameters", "tokens/s", "achieved TFLOP/s", "MFU"], rows))
    print(f"(batch {args.batch} x 128 tokens, median of {args.steps} steps after two warm-up steps)")


if __name__ == "__main__":
    main()
