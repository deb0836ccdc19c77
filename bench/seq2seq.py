"""Our T5 vs Hugging Face's T5ForConditionalGeneration (SDPA attention), FLAN-T5-small shape, random weights, one
process.

    python bench/seq2seq.py [--batch 8] [--src 256] [--new-tokens 48]

Forward (encoder + decoder over given targets, no gradients) tokens per second, and greedy and 4-beam generation
new tokens per second, with the KV cache. Runs alternate between the two and keep the best of three.
"""

import argparse
import time

import torch
from common import hardware, table
from transformers import T5Config as HFT5Config
from transformers import T5ForConditionalGeneration
from transformers import logging as hf_logging

from leximind.generate import generate_seq2seq
from leximind.model import T5
from lightbrain.core import get_device

hf_logging.set_verbosity_error()


def best_of_3(fn, device) -> float:
    times = []
    for _ in range(3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--src", type=int, default=256, help="input tokens per example")
    p.add_argument("--tgt", type=int, default=64, help="target tokens per example (forward)")
    p.add_argument("--new-tokens", type=int, default=48, help="tokens generated per example")
    args = p.parse_args()
    device = get_device()
    torch.manual_seed(0)
    shape = dict(
        vocab_size=32128,
        d_model=512,
        d_kv=64,
        d_ff=1024,
        num_layers=8,
        num_heads=6,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
    )
    hf = T5ForConditionalGeneration._from_config(HFT5Config(**shape), attn_implementation="sdpa").to(device).eval()
    ours = T5.from_hf(hf).to(device).eval()
    g = torch.Generator().manual_seed(0)
    src = torch.randint(3, 32000, (args.batch, args.src), generator=g).to(device)
    tgt = torch.randint(3, 32000, (args.batch, args.tgt), generator=g).to(device)
    mask = torch.ones_like(src)
    n = args.new_tokens
    print(
        f"FLAN-T5-small shape ({sum(p.numel() for p in ours.parameters()):,} parameters), random weights, "
        f"batch {args.batch}, "
        f"{args.src} input tokens, device {device}\nhardware: {hardware()}\n"
    )
    rows = []
    with torch.no_grad():
        work = {
            f"forward, tokens/s ({args.src} in + {args.tgt} out per example)": (
                (lambda: ours(src, tgt, attention_mask=mask)),
                (lambda: hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt)),
                args.batch * (args.src + args.tgt),
            ),
            f"greedy generation, new tokens/s ({n} per example)": (
                (lambda: generate_seq2seq(ours, src, mask, max_new_tokens=n, min_new_tokens=n)),
                (
                    lambda: hf.generate(
                        input_ids=src, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False
                    )
                ),
                args.batch * n,
            ),
            f"4-beam generation, new tokens/s ({n} per example)": (
                (lambda: generate_seq2seq(ours, src, mask, max_new_tokens=n, min_new_tokens=n, num_beams=4)),
                (
                    lambda: hf.generate(
                        input_ids=src,
                        attention_mask=mask,
                        max_new_tokens=n,
                        min_new_tokens=n,
                        num_beams=4,
                        do_sample=False,
                    )
                ),
                args.batch * n,
            ),
        }
        for name, (mine, theirs, tokens) in work.items():
            mine()
            theirs()  # warm up
            t_ours, t_hf = best_of_3(mine, device), best_of_3(theirs, device)
            rows.append([name, f"{tokens / t_ours:,.0f}", f"{tokens / t_hf:,.0f}", f"{t_hf / t_ours:.2f}x"])
    print(table(["", "ours", "HF T5ForConditionalGeneration (sdpa)", "ours / HF"], rows))


if __name__ == "__main__":
    main()
