"""Our GPT vs Hugging Face's GPT2LMHeadModel (SDPA attention), same weights, same batches, one process.

    python bench/model.py [--config lightbrain_tiny|tiny|gpt2] [--steps N] [--rounds N] [--compile]

Training: forward + backward + AdamW step at batch 8, tokens per second. Generation: greedy with a KV cache at
batch 1 and batch 8, new tokens per second. The two models alternate, round after round, and each keeps its best
time, to even out the machine's noise. Peak memory is measured in separate runs (CUDA's counter on a GPU, the
profiler's allocation events on a CPU). At batch 1 every weight is read once per new token, so the script also
measures this machine's memory bandwidth on the output layer and prints the speed that bound allows. On a GPU (or
with --compile) the table is repeated with both models under torch.compile, and training shows its MFU.
Token-for-token equality of the two greedy outputs is checked by tests/test_generate.py, not here.
"""

import argparse
import time

import torch
from common import hardware, peak_tflops, table
from transformers import GPT2Config, GPT2LMHeadModel
from transformers import logging as hf_logging

from lightbrain.attention import peak_memory_mb
from lightbrain.core import get_device
from lightbrain.generate import generate
from lightbrain.model import GPT, GPTConfig

hf_logging.set_verbosity_error()


def make_pair(config: GPTConfig, device) -> tuple[GPT, GPT2LMHeadModel]:
    "A Hugging Face GPT-2 with `config`'s shape (no dropout, SDPA attention) and our GPT with the same weights."
    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.context_length,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        n_embd=config.d_model,
        resid_pdrop=0,
        embd_pdrop=0,
        attn_pdrop=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    hf = GPT2LMHeadModel._from_config(hf_config, attn_implementation="sdpa").to(device)
    return GPT.from_hf(hf).to(device), hf


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def trainer(model, loss_of, batches, device):
    "A function running one AdamW step per batch (forward, backward, update), warmed up (and compiled) once."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    def run():
        for x, y in batches:
            loss = loss_of(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run()
    return run


def generator(model, prompt, n, ours: bool):
    "A function generating `n` greedy tokens after `prompt` with the KV cache."
    if ours:
        return lambda: generate(model, prompt, n, temperature=0)
    mask = torch.ones_like(prompt)
    options = dict(do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=0, eos_token_id=None)
    return lambda: model.generate(prompt, attention_mask=mask, **options)


def best_of(fns: dict, rounds: int, device) -> dict:
    "Each function's fastest time over `rounds` rounds, the functions alternating within each round."
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn, device))
    return best


def bandwidth_bound(model: GPT, device) -> tuple[float, float]:
    """This machine's memory bandwidth (GB/s), measured on the output layer at batch 1, and the tokens per second it
    allows at batch 1 if every weight is read once per token and nothing else costs anything."""
    weight, h = model.lm_head.weight.detach(), torch.randn(1, model.config.d_model, device=device)
    seconds = min(timed(lambda: torch.nn.functional.linear(h, weight), device) for _ in range(20))
    gb_per_s = weight.numel() * weight.element_size() / seconds / 1e9
    read = sum(p.numel() * p.element_size() for p in model.parameters())  # the tied head and embedding: once
    return gb_per_s, gb_per_s * 1e9 / read


def flops_per_token(config: GPTConfig) -> float:
    "Training FLOPs per token: 6 per weight (forward and backward) plus attention's scores (PaLM's appendix B)."
    n = 12 * config.n_layers * config.d_model**2 + config.vocab_size * config.d_model
    return 6 * n + 12 * config.n_layers * config.d_model * config.context_length


def measure(ours, hf, config, args, device) -> list[list[str]]:
    "The table's rows for one pair of models."
    T, g = config.context_length, torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(config.vocab_size, (args.batch, T), generator=g).to(device),) * 2 for _ in range(args.steps)
    ]
    train = {
        "ours": trainer(ours, lambda m, x, y: m(x, labels=y)[1], batches, device),
        "hf": trainer(hf, lambda m, x, y: m(x, labels=y).loss, batches, device),
    }
    seconds = best_of(train, args.rounds, device)
    tokens = args.steps * args.batch * T
    rows = [["training step, tokens/s", *(f"{tokens / seconds[k]:,.0f}" for k in ("ours", "hf"))]]
    rows[-1].append(f"{seconds['hf'] / seconds['ours']:.2f}x")
    memory = {k: peak_memory_mb(fn, device) for k, fn in train.items()}
    rows.append(["training step, peak memory MB", *(f"{memory[k]:,.0f}" for k in ("ours", "hf")), ""])
    if device.type == "cuda":
        peak = peak_tflops(device)
        mfu = [tokens / seconds[k] * flops_per_token(config) / (peak * 1e12) for k in ("ours", "hf")] if peak else None
        rows.append(["training MFU (fp32 step)", *(f"{m:.1%}" for m in mfu), ""] if mfu else ["MFU", "?", "?", ""])
    ours.eval()
    hf.eval()
    n = min(args.new_tokens, T - 16)
    with torch.no_grad():
        for batch in (1, 8):
            prompt = torch.randint(config.vocab_size, (batch, 16), generator=g).to(device)
            gen = {k: generator(m, prompt, n, k == "ours") for k, m in (("ours", ours), ("hf", hf))}
            seconds = best_of(gen, args.rounds, device)
            label = f"greedy generation, batch {batch} ({n} new tokens), tokens/s"
            rows.append([label, *(f"{batch * n / seconds[k]:,.1f}" for k in ("ours", "hf"))])
            rows[-1].append(f"{seconds['hf'] / seconds['ours']:.2f}x")
            memory = {k: peak_memory_mb(fn, device) for k, fn in gen.items()}
            rows.append([f"generation, batch {batch}, peak memory MB", *(f"{memory[k]:,.1f}" for k in memory), ""])
    ours.train()
    hf.train()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="lightbrain_tiny", choices=["tiny", "lightbrain_tiny", "gpt2"])
    p.add_argument("--steps", type=int, default=3, help="training steps per timing")
    p.add_argument("--rounds", type=int, default=7, help="timings per model; the best is kept")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--compile", action="store_true", help="also time both models under torch.compile (GPU: always)")
    args = p.parse_args()
    device = get_device()
    config = getattr(GPTConfig, args.config)()  # the weights (and dropout 0) come from the HF model below
    torch.manual_seed(0)
    ours, hf = make_pair(config, device)
    print(
        f"config: {args.config} ({sum(p.numel() for p in ours.parameters()):,} parameters), training batch "
        f"{args.batch} x {config.context_length} tokens, fp32, device {device}\nhardware: {hardware()}\n"
    )
    header = ["", "ours", "HF GPT2LMHeadModel (sdpa)", "ours / HF"]
    print(table(header, measure(ours, hf, config, args, device)))
    gb_per_s, ceiling = bandwidth_bound(ours, device)
    print(
        f"\nMemory bandwidth measured on the output layer: {gb_per_s:.1f} GB/s. At batch 1 every weight is read for "
        f"every token, so no implementation of this model can generate faster than about {ceiling:,.0f} tokens/s "
        "here."
    )
    if args.compile or device.type == "cuda":
        print("\nBoth models under torch.compile:")
        for model in (ours, hf):
            model.forward = torch.compile(model.forward)  # in place: Hugging Face's generate stays reachable
        print(table(header, measure(ours, hf, config, args, device)))


if __name__ == "__main__":
    main()
