"""The GPU check: the first thing to run whenever a GPU is lent (one command, a few minutes, nothing downloaded).

    python tools/gpu_check.py [--out bench/results] [--dry-run]

It runs the course's own code on the GPU, in the precisions full mode uses, and measures what a CPU cannot show:
1. LightBrain-Tiny (chapter 08's model and batch shape), a few steps of chapter 06's `train()` with fp16 autocast and
   loss scaling (the T4 policy) and, where the GPU has it, bf16;
2. a FLAN-T5-base-shaped LexiMind T5 (random weights: no download), a few training steps with fp16 and loss scaling on
   summarization-shaped batches (512 source, 128 target tokens): is every loss finite, and does T5's feed-forward
   output product `wo` really run in fp32 under autocast (chapter 11);
3. the same T5 writing 4-beam summaries under fp16 autocast, as chapter 14 does.
For each: tokens/s, model FLOPs utilisation (FLOPs counted by PyTorch's FlopCounterMode, against the GPU's dense
fp16/bf16 tensor-core peak from its datasheet), peak GPU memory, and the scaled-dot-product-attention kernel PyTorch
picked (flash, memory-efficient, cuDNN or the math fallback). The report is written as JSON and as a markdown table
to OUT/gpu_check-<device>.{json,md}.

`--dry-run` runs the same code at tiny sizes for two steps on whatever device there is (a CPU in the test command:
tests/test_gpu_check.py), so that the script is known to run before GPU minutes are spent on it.
"""

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, when run as `python tools/gpu_check.py`
sys.path.append(str(ROOT / "bench"))  # and the benchmarks' helpers

from common import peak_tflops  # noqa: E402

from leximind.generate import generate_seq2seq  # noqa: E402
from leximind.model import T5, T5Config  # noqa: E402
from lightbrain.core import get_device, seed_everything  # noqa: E402
from lightbrain.model import GPT, GPTConfig  # noqa: E402
from lightbrain.train import TrainConfig, precision, train  # noqa: E402

SDPA_KERNELS = {  # the aten operator that SDPA dispatched to -> its name
    "_flash_attention_forward": "flash",
    "_scaled_dot_product_flash_attention": "flash",
    "_efficient_attention_forward": "memory-efficient",
    "_scaled_dot_product_efficient_attention": "memory-efficient",
    "_scaled_dot_product_cudnn_attention": "cuDNN",
    "_scaled_dot_product_flash_attention_for_cpu": "CPU flash",
    "_scaled_dot_product_attention_math": "math (fallback)",
}
FULL = {"gpt_batch": 32, "gpt_steps": 30, "t5_batch": 8, "t5_steps": 15, "source": 512, "target": 128, "articles": 8}
DRY = {"gpt_batch": 2, "gpt_steps": 2, "t5_batch": 2, "t5_steps": 2, "source": 32, "target": 8, "articles": 2}


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device: torch.device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> float | None:
    "The most GPU memory allocated since `reset_memory` (None on a CPU)."
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def flops_of(fn) -> int:
    "Floating-point operations of `fn()`, counted by PyTorch."
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def sdpa_kernels(fn) -> list[str]:
    "The attention kernels SDPA dispatched to while `fn()` ran (from the profiler's operator names)."
    os.environ.setdefault("KINETO_LOG_LEVEL", "99")  # silence the profiler's start/stop log lines
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    names = {e.name.removeprefix("aten::") for e in prof.events()}
    return sorted({kernel for op, kernel in SDPA_KERNELS.items() if op in names})


def train_steps(model, batches, loss_fn, dtype: str, steps: int, device, count_tokens) -> dict:
    "A few steps of chapter 06's `train()` in `dtype`: tokens/s (median, after the first step), losses, memory."
    config = TrainConfig(
        batch_size=1,  # the batches below have their own size
        max_steps=steps,
        warmup_steps=1,
        eval_interval=steps,
        eval_iters=1,
        log_interval=1,
        dtype=dtype,
        progress=False,
        tracker="none",
        lr=1e-4,
    )
    reset_memory(device)
    rows = train(model, batches, loss_fn, config, device, count_tokens=count_tokens)
    speeds = sorted(r["tokens_per_s"] for r in rows[1:] or rows)
    losses = [r["loss"] for r in rows]
    return {
        "dtype": dtype,
        "steps": steps,
        "tokens_per_s": round(speeds[len(speeds) // 2]),
        "non_finite_losses": sum(not math.isfinite(x) for x in losses),
        "first_loss": round(losses[0], 3),
        "last_loss": round(losses[-1], 3),
        "peak_memory_gb": peak_memory_gb(device),
    }


def with_mfu(row: dict, flops_per_token: float, peak: float | None) -> dict:
    "`row` with its model FLOPs utilisation against `peak` TFLOP/s (None without a known peak)."
    mfu = row["tokens_per_s"] * flops_per_token / (peak * 1e12) if peak else None
    return row | {"mfu": None if mfu is None else round(mfu, 3)}


def check_gpt(device, peak, sizes: dict, dtypes: list[str]) -> list[dict]:
    "LightBrain-Tiny (tiny in a dry run) training steps in each dtype on random tokens of its vocabulary."
    config = GPTConfig.lightbrain_tiny() if sizes is FULL else GPTConfig.tiny()
    B, T = sizes["gpt_batch"], config.context_length
    batches = lambda split, _, g: torch.randint(config.vocab_size, (B, T + 1), generator=g).to(device)
    loss_fn = lambda model, b: model(b[:, :-1], labels=b[:, 1:])[1]
    probe = GPT(config).to(device)
    x = batches("train", B, torch.Generator().manual_seed(0))
    flops_per_token = flops_of(lambda: loss_fn(probe, x).backward()) / (B * T)
    with precision(dtypes[0], device).autocast(), torch.no_grad():
        kernels = sdpa_kernels(lambda: loss_fn(probe, x))
    rows = []
    for dtype in dtypes:
        seed_everything(0)
        model = GPT(config)
        row = train_steps(model, batches, loss_fn, dtype, sizes["gpt_steps"], device, lambda b: b[:, :-1].numel())
        rows.append(
            with_mfu({"check": f"LightBrain {config.n_layers}x{config.d_model} training", **row}, flops_per_token, peak)
        )
    return [r | {"sdpa": kernels} for r in rows]


def t5_batch(config: T5Config, sizes: dict, device, g: torch.Generator) -> dict:
    "A summarization-shaped batch of random tokens: sources, targets ending with end-of-sequence, no padding."
    shape = (sizes["t5_batch"], sizes["source"])
    ids = torch.randint(3, config.vocab_size, shape, generator=g)
    labels = torch.randint(3, config.vocab_size, (sizes["t5_batch"], sizes["target"]), generator=g)
    labels[:, -1] = config.eos_id
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device)}


def check_t5(device, peak, sizes: dict) -> list[dict]:
    """FLAN-T5-base's shape (tiny in a dry run): fp16 training steps, the dtype `wo` computes in, and 4-beam
    summaries."""
    config = T5Config.flan_t5_base() if sizes is FULL else T5Config.tiny()
    batches = lambda split, _, g: t5_batch(config, sizes, device, g)
    loss_fn = lambda model, b: model(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])[1]
    dtype = "fp16" if device.type == "cuda" else "fp32"  # fp16 is the T4's policy; a CPU has no fp16 training
    seed_everything(0)
    model = T5(config).to(device)
    b = batches("train", 0, torch.Generator().manual_seed(0))
    tokens = b["input_ids"].numel() + b["labels"].numel()
    flops_per_token = flops_of(lambda: loss_fn(model, b).backward()) / tokens
    model.zero_grad(set_to_none=True)
    seen = []  # the dtype of `wo`'s output, under autocast
    hook = model.decoder[0].ff.wo.register_forward_hook(lambda m, i, out: seen.append(str(out.dtype)))
    policy = precision(dtype, device)
    with policy.autocast(), torch.no_grad():
        kernels = sdpa_kernels(lambda: loss_fn(model, b))
    hook.remove()
    count = lambda batch: batch["input_ids"].numel() + batch["labels"].numel()
    row = train_steps(model, batches, loss_fn, dtype, sizes["t5_steps"], device, count)
    rows = [
        with_mfu(
            {"check": f"T5 {config.n_layers}+{config.n_decoder_layers} layers training", **row}, flops_per_token, peak
        )
        | {"wo_output_dtype": seen[0], "sdpa": kernels}
    ]
    rows.append(check_beams(model, config, sizes, device, policy) | {"sdpa": kernels})
    return rows


def check_beams(model: T5, config: T5Config, sizes: dict, device, policy) -> dict:
    "4-beam summaries of random articles under autocast, each exactly `target` tokens long (end-of-sequence held off)."
    n, length = sizes["articles"], sizes["target"]
    ids = torch.randint(3, config.vocab_size, (n, sizes["source"]), generator=torch.Generator().manual_seed(1))
    ids = ids.to(device)
    run = lambda: generate_seq2seq(model, ids, num_beams=4, max_new_tokens=length, min_new_tokens=length)
    with policy.autocast():
        run()  # a first call warms up the kernels
        reset_memory(device)
        sync(device)
        start = time.perf_counter()
        out = run()
        sync(device)
    seconds = time.perf_counter() - start
    return {
        "check": f"T5 4-beam generation, {n} articles of {sizes['source']} tokens",
        "dtype": policy.name,
        "new_tokens_per_s": round(n * (out.shape[1] - 1) / seconds, 1),
        "seconds_per_article": round(seconds / n, 3),
        "peak_memory_gb": peak_memory_gb(device),
    }


def environment(device: torch.device) -> dict:
    "What the numbers were measured on."
    gpu = torch.cuda.get_device_properties(device) if device.type == "cuda" else None
    return {
        "device": torch.cuda.get_device_name(device) if gpu else f"CPU ({platform.processor() or platform.machine()})",
        "capability": list(torch.cuda.get_device_capability(device)) if gpu else None,
        "memory_gb": round(gpu.total_memory / 2**30, 1) if gpu else None,
        "bf16": bool(gpu) and torch.cuda.is_bf16_supported(),
        "peak_tflops_fp16_bf16": peak_tflops(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def markdown(report: dict) -> str:
    "The report as a markdown table, under a line naming the device."
    env = report["environment"]
    lines = [
        f"# GPU check: {env['device']}" + (" (dry run: tiny sizes)" if report["dry_run"] else ""),
        "",
        f"torch {env['torch']}, CUDA {env['cuda']}, Python {env['python']}; peak used for MFU: "
        f"{env['peak_tflops_fp16_bf16']} TFLOP/s (dense fp16/bf16, datasheet); {report['seconds']} s in all.",
        "",
        "| check | dtype | tokens/s | MFU | peak memory GB | SDPA kernel | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        speed = r.get("tokens_per_s", r.get("new_tokens_per_s"))
        notes = []
        if "non_finite_losses" in r:
            notes.append(
                f"loss {r['first_loss']} -> {r['last_loss']}, non-finite: {r['non_finite_losses']}/{r['steps']}"
            )
        if "wo_output_dtype" in r:
            notes.append(f"wo computes in {r['wo_output_dtype'].removeprefix('torch.')}")
        if "seconds_per_article" in r:
            notes.append(f"{r['seconds_per_article']} s per article (new tokens/s)")
        mfu = "" if r.get("mfu") is None else f"{r['mfu']:.1%}"
        memory = "" if r.get("peak_memory_gb") is None else r["peak_memory_gb"]
        lines.append(
            f"| {r['check']} | {r['dtype']} | {speed:,} | {mfu} | {memory} | {', '.join(r['sdpa']) or 'none'} | "
            f"{'; '.join(notes)} |"
        )
    skipped = report.get("skipped")
    return "\n".join(lines + ([f"\nNot run: {skipped}"] if skipped else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for the JSON and markdown reports")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, two steps: check that the script runs")
    args = p.parse_args(argv)
    device = get_device()
    if device.type != "cuda" and not args.dry_run:
        p.error("no CUDA GPU here: run it on a GPU, or with --dry-run to check it on this machine")
    sizes, start = DRY if args.dry_run else FULL, time.perf_counter()
    env, peak = environment(device), peak_tflops(device)
    dtypes = ["fp16", "bf16"] if env["bf16"] else ["fp16"] if device.type == "cuda" else ["fp32"]
    rows = check_gpt(device, peak, sizes, dtypes) + check_t5(device, peak, sizes)
    report = {
        "environment": env,
        "dry_run": args.dry_run,
        "sizes": sizes,
        "rows": rows,
        "seconds": round(time.perf_counter() - start),
        "skipped": None if env["bf16"] or device.type != "cuda" else "bf16 (this GPU has no bf16)",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_check-" + re.sub(r"[^A-Za-z0-9]+", "-", env["device"]).strip("-").lower()
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
