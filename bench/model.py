"""Our GPT beside Hugging Face's GPT2LMHeadModel (SDPA attention) and nanoGPT's model.py, same weights, same batches,
one process.

    python bench/model.py [--config lightbrain_tiny|tiny|gpt2] [--nanogpt PATH] [--steps N] [--rounds N] [--compile]

nanoGPT is read from PATH (its model.py, or the folder of a clone), or from $NANOGPT; it is never copied into this
repository, and without it the table has two columns. Training: forward + backward + AdamW step at batch 8, tokens
per second, on random tokens and on real token windows (PubMedQA, GPT-2's tokenizer). Generation: greedy at batch 1
and 8, new tokens per second (ours and Hugging Face's with a KV cache; nanoGPT's `generate` has none). The models
alternate, round after round; each keeps its best and its median time. Peak memory is measured in separate runs
(CUDA's counter on a GPU, the profiler's allocation events on a CPU). At batch 1 every weight is read once per new
token, so the script also measures this machine's memory bandwidth and prints the speed that bound allows and the
share of it each model reaches. On a GPU (or with --compile) the table is repeated under torch.compile, with MFU.
Token-for-token equality of the greedy outputs is checked by tests/test_generate.py, not here.
"""

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import hardware, peak_tflops, table
from transformers import GPT2Config, GPT2LMHeadModel
from transformers import logging as hf_logging

from lightbrain.attention import peak_memory_mb
from lightbrain.core import get_device
from lightbrain.generate import generate
from lightbrain.model import GPT, GPTConfig

hf_logging.set_verbosity_error()


def hf_twin(ours: GPT, device) -> GPT2LMHeadModel:
    "Hugging Face's GPT-2 with our model's shape and weights (no dropout, SDPA attention)."
    c = ours.config
    hf_config = GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.context_length,
        n_layer=c.n_layers,
        n_head=c.n_heads,
        n_embd=c.d_model,
        resid_pdrop=0,
        embd_pdrop=0,
        attn_pdrop=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    hf = GPT2LMHeadModel._from_config(hf_config, attn_implementation="sdpa")
    mine = ours.state_dict()
    state = {f"transformer.{k}": v for k, v in mine.items() if k.split(".")[0] in ("wte", "wpe", "ln_f")}
    for i in range(c.n_layers):  # its Conv1D layers hold (in, out) matrices: ours transposed
        for name, theirs, transpose in NAMES:
            weight = mine[f"blocks.{i}.{name}"]
            state[f"transformer.h.{i}.{theirs}"] = weight.t() if transpose else weight
    hf.load_state_dict(state, strict=False)  # the head is tied to wte; the attention's mask buffers are its own
    return hf.to(device)


NAMES = [  # our block's parameter, Hugging Face's (nanoGPT's are the same with nn.Linear), transposed for HF's Conv1D
    ("ln_1.weight", "ln_1.weight", False),
    ("ln_1.bias", "ln_1.bias", False),
    ("attn.qkv_proj.weight", "attn.c_attn.weight", True),
    ("attn.qkv_proj.bias", "attn.c_attn.bias", False),
    ("attn.out_proj.weight", "attn.c_proj.weight", True),
    ("attn.out_proj.bias", "attn.c_proj.bias", False),
    ("ln_2.weight", "ln_2.weight", False),
    ("ln_2.bias", "ln_2.bias", False),
    ("mlp.fc.weight", "mlp.c_fc.weight", True),
    ("mlp.fc.bias", "mlp.c_fc.bias", False),
    ("mlp.proj.weight", "mlp.c_proj.weight", True),
    ("mlp.proj.bias", "mlp.c_proj.bias", False),
]


def nanogpt_source(path: str | None) -> Path | None:
    "nanoGPT's model.py from --nanogpt or $NANOGPT (a file or a clone's folder), or None."
    path = path or os.environ.get("NANOGPT")
    if not path:
        return None
    file = Path(path) / "model.py" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise SystemExit(f"--nanogpt {path}: no nanoGPT model.py there")
    return file


def nanogpt_twin(ours: GPT, file: Path, device):
    "nanoGPT's GPT (its model.py, loaded from `file`) with our model's shape and weights; GPT-2's vocabulary unpadded."
    spec = importlib.util.spec_from_file_location("nanogpt_model", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = ours.config
    config = module.GPTConfig(c.context_length, c.vocab_size, c.n_layers, c.n_heads, c.d_model, dropout=0.0, bias=True)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        nano = module.GPT(config)
    mine = ours.state_dict()
    state = {f"transformer.{k}": v for k, v in mine.items() if k.split(".")[0] in ("wte", "wpe", "ln_f")}
    for i in range(c.n_layers):  # nn.Linear, as ours: no transposes
        for name, theirs, _ in NAMES:
            state[f"transformer.h.{i}.{theirs}"] = mine[f"blocks.{i}.{name}"]
    state["lm_head.weight"] = mine["lm_head.weight"]
    nano.load_state_dict(state, strict=False)  # without flash attention it keeps a mask buffer of its own
    return nano.to(device)


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


LOSSES = {  # each model's own training loss on (x, y)
    "ours": lambda m, x, y: m(x, labels=y)[1],
    "hf": lambda m, x, y: F.cross_entropy(m(x).logits.flatten(0, 1), y.flatten()),  # y is already shifted
    "nanogpt": lambda m, x, y: m(x, y)[1],
}


def greedy(name: str, model, prompt, n: int):
    "A function generating `n` greedy tokens after `prompt`, as each model's own generation does it."
    if name == "ours":
        return lambda: generate(model, prompt, n, temperature=0)
    if name == "nanogpt":  # no KV cache: each token runs the whole sequence again; top_k=1 makes it greedy
        return lambda: model.generate(prompt, n, top_k=1)
    mask = torch.ones_like(prompt)
    options = dict(do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=0, eos_token_id=None)
    return lambda: model.generate(prompt, attention_mask=mask, **options)


def rounds_of(fns: dict, rounds: int, device) -> dict[str, list[float]]:
    "Each function's times over `rounds` rounds, the functions alternating within each round."
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


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


def inputs_and_targets(windows: list[torch.Tensor], device) -> list[tuple]:
    "Each (batch, T + 1) window as inputs (its first T tokens) and targets (its last T), contiguous, on `device`."
    return [(w[:, :-1].contiguous().to(device), w[:, 1:].contiguous().to(device)) for w in windows]


def random_batches(config: GPTConfig, batch: int, steps: int, device) -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    shape = (batch, config.context_length + 1)
    return inputs_and_targets([torch.randint(config.vocab_size, shape, generator=g) for _ in range(steps)], device)


def real_batches(config: GPTConfig, batch: int, steps: int, device) -> list[tuple] | None:
    "Windows of PubMedQA abstracts in GPT-2's tokens (the course's slice), or None for another vocabulary."
    if config.vocab_size != 50257:
        return None
    from lightbrain.data import course_data, pubmedqa_text
    from lightbrain.tokenizer import load_tokenizer

    tokenizer = load_tokenizer("gpt2")
    ids = [t for ex in course_data("pubmedqa")["train"] for t in tokenizer.encode_ordinary(pubmedqa_text(ex))]
    tokens, T = torch.tensor(ids), config.context_length
    starts = torch.randint(len(ids) - T - 1, (steps, batch), generator=torch.Generator().manual_seed(0))
    return inputs_and_targets([torch.stack([tokens[s : s + T + 1] for s in row]) for row in starts], device)


def speed_row(label: str, work: float, times: dict[str, list[float]], names: list[str]) -> list[str]:
    "One table row: each model's best (and median) work per second, then ours against each peer (best times)."
    cells = [f"{work / min(t):,.1f} ({work / statistics.median(t):,.1f})" for t in times.values()]
    ratios = [f"{min(times[n]) / min(times['ours']):.2f}x" for n in names[1:]]
    return [label, *cells, *ratios]


def measure(models: dict, config: GPTConfig, args, device, bound: float) -> list[list[str]]:
    "The table's rows for a set of models with the same weights; `bound`: the batch-1 generation speed limit."
    names, T = list(models), config.context_length
    blank = [""] * (len(names) - 1)
    rows = []
    inputs = {"random tokens": random_batches(config, args.batch, args.steps, device)}
    if (real := real_batches(config, args.batch, args.steps, device)) is not None:
        inputs["real token windows"] = real
    for what, batches in inputs.items():
        train = {n: trainer(m, LOSSES[n], batches, device) for n, m in models.items()}
        times = rounds_of(train, args.rounds, device)
        tokens = args.steps * args.batch * T
        rows.append(speed_row(f"training, {what}, tokens/s", tokens, times, names))
        if device.type == "cuda" and (peak := peak_tflops(device)):
            mfu = [tokens / min(times[n]) * flops_per_token(config) / (peak * 1e12) for n in names]
            rows.append([f"training MFU, {what}", *(f"{m:.1%}" for m in mfu), *blank])
    memory = {n: peak_memory_mb(fn, device) for n, fn in train.items()}
    rows.append(["training step, peak memory MB", *(f"{memory[n]:,.0f}" for n in names), *blank])
    for m in models.values():
        m.eval()
    n = min(args.new_tokens, T - 16)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for batch in (1, 8):
            prompt = torch.randint(config.vocab_size, (batch, 16), generator=g).to(device)
            gen = {name: greedy(name, m, prompt, n) for name, m in models.items()}
            times = rounds_of(gen, args.rounds, device)
            rows.append(speed_row(f"greedy generation, batch {batch}, tokens/s", batch * n, times, names))
            if batch == 1:
                rows.append(
                    ["  share of the bandwidth bound", *(f"{n / min(t) / bound:.0%}" for t in times.values()), *blank]
                )
            memory = {name: peak_memory_mb(fn, device) for name, fn in gen.items()}
            rows.append([f"generation, batch {batch}, peak memory MB", *(f"{memory[k]:,.1f}" for k in names), *blank])
    for m in models.values():
        m.train()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="lightbrain_tiny", choices=["tiny", "lightbrain_tiny", "gpt2"])
    p.add_argument("--nanogpt", help="nanoGPT's model.py, or a clone's folder (default: $NANOGPT; none: skipped)")
    p.add_argument("--steps", type=int, default=3, help="training steps per timing")
    p.add_argument("--rounds", type=int, default=7, help="timings per model; the best and the median are shown")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=100)
    p.add_argument("--compile", action="store_true", help="also time the models under torch.compile (GPU: always)")
    args = p.parse_args()
    device = get_device()
    config = getattr(GPTConfig, args.config)(dropout=0.0)
    torch.manual_seed(0)
    ours = GPT(config).to(device)
    models = {"ours": ours, "hf": hf_twin(ours, device)}
    if nano := nanogpt_source(args.nanogpt):
        models["nanogpt"] = nanogpt_twin(ours, nano, device)
    print(
        f"config: {args.config} ({sum(p.numel() for p in ours.parameters()):,} parameters), training batch "
        f"{args.batch} x {config.context_length} tokens, fp32, device {device}\nhardware: {hardware()}\n"
        + (f"nanoGPT: {nano}\n" if nano else "nanoGPT: not given (--nanogpt PATH or $NANOGPT): skipped\n")
    )
    peers = {"hf": "HF GPT2LMHeadModel (sdpa)", "nanogpt": "nanoGPT model.py"}
    header = ["best (median) of each", "ours", *(peers[n] for n in list(models)[1:])]
    header += [f"ours vs {peers[n].split()[0]}" for n in list(models)[1:]]
    gb_per_s, ceiling = bandwidth_bound(ours, device)  # once: the bound the table's shares are of
    print(table(header, measure(models, config, args, device, ceiling)))
    print(
        f"\nMemory bandwidth measured on the output layer: {gb_per_s:.1f} GB/s. At batch 1 every weight is read for "
        f"every token, so no implementation of this model can generate faster than about {ceiling:,.0f} tokens/s "
        "here. Ratios above 1 mean ours is faster (the peer's best time over ours)."
    )
    if args.compile or device.type == "cuda":
        print("\nUnder torch.compile:")
        for model in models.values():
            model.forward = torch.compile(model.forward)  # in place: Hugging Face's generate stays reachable
        print(table(header, measure(models, config, args, device, ceiling)))


if __name__ == "__main__":
    main()
